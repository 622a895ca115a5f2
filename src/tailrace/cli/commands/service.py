"""The service's processes: `tailrace up`, `scheduler`, `worker`; and `logs` and
`preview-activation`, which read the metadata database (TAILRACE_HOME's SQLite file, or
TAILRACE_DATABASE_URL) directly. The AWS-style pipeline commands are in aws.py."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from tailrace.cli.commands.aws import BACKFILL_THRESHOLD
from tailrace.cli.params import add_parameter_value_args, parameter_values_from_args
from tailrace.clock import format_dp, parse_dp
from tailrace.errors import UsageError

BACKFILL_CONFIRM = BACKFILL_THRESHOLD
"""Backfills of more periods than this should be confirmed before activation."""


def register(sub: Any) -> None:
    _register_processes(sub)
    _register_preview(sub)


# --- processes ------------------------------------------------------------------------------------


def _common_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lease",
        type=float,
        metavar="SECONDS",
        default=120.0,
        help="attempt lease when an object sets no reportProgressTimeout (default 120)",
    )
    p.add_argument(
        "--poll",
        type=float,
        metavar="SECONDS",
        default=1.0,
        help="seconds between polls when idle (default 1)",
    )
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        default=10.0,
        help="on Ctrl-C, how long running attempts may finish before they are given back (default 10)",
    )


def _register_processes(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="run the whole service: scheduler, task runners, HTTP endpoint",
        description="Start the pipeline service on the embedded defaults: the scheduler, embedded task runners "
        "(every worker group, and local pools for runsOn resources) and the HTTP endpoint. Ctrl-C stops "
        "cleanly: running attempts get --grace seconds, then are given back to be retried.",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env TAILRACE_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (default 8040, env TAILRACE_PORT)")
    p.add_argument(
        "--workers", type=int, help="embedded task runner threads (default 4, env TAILRACE_WORKERS)"
    )
    p.add_argument(
        "--worker-group",
        action="append",
        default=[],
        metavar="G",
        help="serve only these worker groups (repeatable; default every group)",
    )
    p.add_argument("--no-resources", action="store_true", help="do not host local pools for runsOn resources")
    p.add_argument("--no-http", action="store_true", help="do not start the HTTP endpoint")
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="accept API requests without a signature (local experiments only)",
    )
    _common_runtime(p)
    p.set_defaults(func=_up)

    p = sub.add_parser(
        "scheduler",
        help="run the scheduler alone (workers run elsewhere)",
        description="Run the scheduler loop against the metadata database, plus a small pool for the checks the "
        "service runs itself (preconditions that name no runner). Several schedulers may run: each pipeline is "
        "handled under a row lock.",
    )
    p.add_argument(
        "--service-threads",
        type=int,
        default=2,
        metavar="N",
        help="runner threads for the service's own checks (default 2)",
    )
    _common_runtime(p)
    p.set_defaults(func=_scheduler)

    p = sub.add_parser(
        "worker",
        help="run task runners for worker groups (on this host or another)",
        description="Poll the metadata database for tasks of the given worker groups and run them, like AWS Task "
        "Runner. Point several hosts at one PostgreSQL (TAILRACE_DATABASE_URL) to scale out.",
        epilog="example: TAILRACE_DATABASE_URL=postgresql://tailrace@db/tailrace tailrace worker --worker-group etl",
    )
    p.add_argument(
        "--worker-group",
        action="append",
        default=[],
        metavar="G",
        help="worker group to serve (repeatable; '*' serves every group)",
    )
    p.add_argument("--threads", type=int, default=2, metavar="N", help="task runner threads (default 2)")
    p.add_argument("--resources", action="store_true", help="also host local pools for runsOn resources")
    p.add_argument(
        "--pool-size", type=int, default=2, metavar="N", help="runner threads per resource (default 2)"
    )
    p.add_argument("--name", default="worker", help="task runner name prefix (taskrunnerId)")
    _common_runtime(p)
    p.set_defaults(func=_worker)

    p = sub.add_parser(
        "logs",
        help="print the logs of an instance's attempts",
        description="Print each attempt's log (stdout/stderr of commands, engine messages, errors with stack traces) "
        "from pipelineLogUri or the data directory.",
    )
    p.add_argument("pipeline_id", metavar="PIPELINE")
    p.add_argument(
        "instance", metavar="INSTANCE", help="instance id (@comp_YYYY-MM-DDTHH:MM:SS) or attempt id"
    )
    p.add_argument("--attempt", type=int, metavar="N", help="only attempt N")
    p.set_defaults(func=_logs)


def _runtime_config(args: argparse.Namespace) -> Any:
    from tailrace.runtime.transitions import RuntimeConfig

    if args.lease <= 0:
        raise UsageError(f"--lease must be positive; found {args.lease}")
    return RuntimeConfig(lease=timedelta(seconds=args.lease))


def _hive_factory(services: Any) -> Any:
    return getattr(services, "hive_engine_factory", None) or services.hive_engine


def _process(ctx: Any, args: argparse.Namespace, **config: Any) -> Any:
    import logging

    from tailrace.runtime.runners import RunnerConfig, ServiceProcess

    # The service's own log (pools started and stopped, actions fired, lost leases) on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("tailrace.service", "tailrace.runners", "tailrace.worker", "tailrace.scheduler"):
        logging.getLogger(name).setLevel(logging.INFO)

    services = ctx.services
    service = services.pipeline_service(_runtime_config(args))
    return ServiceProcess(
        service=service,
        storage=services.storage,
        home=ctx.settings.home.resolve(),
        config=RunnerConfig(poll_interval=args.poll, grace=args.grace, **config),
        hive_engine_factory=_hive_factory(services),
    )


def _stop_signals() -> threading.Event:
    """Install Ctrl-C / SIGTERM handlers first thing, so that a signal during start-up also stops
    cleanly: the first sets the returned event, a second exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            print(
                "tailrace: stopping now; running attempts will be retried after their lease", file=sys.stderr
            )
            raise SystemExit(130)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _wait_for_signal(process: Any, what: str, stop: threading.Event) -> int:
    while not stop.wait(0.5) and not process.stop_event.is_set():
        pass  # Ctrl-C, SIGTERM, or the service told this task runner to terminate
    running = process.running
    note = f"; giving {len(running)} running attempt(s) up to {process.config.grace:.0f} s" if running else ""
    print(f"{what}: stopping{note} (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
    process.stop()
    print(f"{what}: stopped", file=sys.stderr, flush=True)
    return 0


def _describe_db(ctx: Any) -> str:
    from sqlalchemy.engine import make_url

    return make_url(ctx.settings.effective_database_url).render_as_string(hide_password=True)


def _up(args: argparse.Namespace, ctx: Any) -> int:
    began = time.monotonic()
    stop = _stop_signals()
    settings = ctx.settings
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    workers = args.workers if args.workers is not None else settings.workers
    process = _process(
        ctx,
        args,
        scheduler=True,
        workers=workers,
        worker_groups=tuple(args.worker_group) or ("*",),
        service_tasks=True,
        resources=not args.no_resources,
        name="up",
    )
    server = (
        None
        if args.no_http
        else _start_http(ctx, process.service, host, port, insecure_no_auth=args.insecure_no_auth)
    )
    if server is not None and not ctx.settings.endpoint:
        ctx.services.topics.public_url = (
            server.url
        )  # links in messages point here unless `endpoint` says otherwise
    # Notification loops (deliveries, alarm evaluation, SnsAlarm relay); the process assembly may own them later.
    loops = [loop.start() for loop in ctx.services.notify_loops()]
    process.start()
    groups = ", ".join(args.worker_group) or "every worker group"
    print(f"tailrace up: metadata {_describe_db(ctx)}, data in {settings.home.resolve()}", flush=True)
    print(
        f"tailrace up: scheduler and {workers} task runner(s) for {groups}"
        + ("" if args.no_resources else ", local pools for runsOn resources"),
        flush=True,
    )
    if server is not None:
        print(
            f"tailrace up: listening on http://{host}:{server.port} (ready in {time.monotonic() - began:.2f} s)",
            flush=True,
        )
    try:
        return _wait_for_signal(process, "tailrace up", stop)
    finally:
        for loop in loops:
            loop.stop()
        if server is not None:
            server.stop()


def _start_http(ctx: Any, service: Any, host: str, port: int, *, insecure_no_auth: bool) -> Any:
    """The API (AWS JSON 1.1, REST, OpenAPI) on host:port, listening before this returns; on
    first start it creates and prints the first access key (tailrace.api.server.start_api)."""
    from tailrace.api.server import start_api

    return start_api(
        service=service,
        host=host,
        port=port,
        home=ctx.settings.home.resolve(),
        storage=ctx.services.storage,
        insecure_no_auth=insecure_no_auth,
        topics=ctx.services.topics,
        signer=ctx.services.notify_signer,
        alarms=ctx.services.alarms,
    )


def _scheduler(args: argparse.Namespace, ctx: Any) -> int:
    stop = _stop_signals()
    process = _process(
        ctx,
        args,
        scheduler=True,
        workers=args.service_threads,
        worker_groups=(),
        service_tasks=True,
        resources=False,
        name="scheduler",
    )
    process.start()
    print(f"tailrace scheduler: running against {_describe_db(ctx)}", flush=True)
    return _wait_for_signal(process, "tailrace scheduler", stop)


def _worker(args: argparse.Namespace, ctx: Any) -> int:
    stop = _stop_signals()
    if not args.worker_group and not args.resources:
        raise UsageError("name at least one --worker-group G (or '*'), or --resources")
    process = _process(
        ctx,
        args,
        scheduler=False,
        workers=args.threads if args.worker_group else 0,
        worker_groups=tuple(args.worker_group),
        service_tasks=False,
        resources=args.resources,
        pool_size=args.pool_size,
        name=args.name,
    )
    process.start()
    what = ", ".join(args.worker_group) or "no worker group"
    print(
        f"tailrace worker: {args.threads} runner(s) for {what}"
        + (", hosting resources" if args.resources else "")
        + f" against {_describe_db(ctx)}",
        flush=True,
    )
    return _wait_for_signal(process, "tailrace worker", stop)


def _logs(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.errors import TailraceError
    from tailrace.state import ObjectNotFound

    store = ctx.services.state
    instance = args.instance
    only = args.attempt
    if "_Attempt=" in instance:
        instance, _, n = instance.rpartition("_Attempt=")
        only = int(n)
    with store.transaction(readonly=True) as tx:
        tx.pipelines.get(args.pipeline_id)
        if tx.instances.find(args.pipeline_id, instance) is None:
            raise ObjectNotFound(args.pipeline_id, instance, "instance")
        attempts = tx.attempts.for_instance(args.pipeline_id, instance)
    if only is not None:
        attempts = [a for a in attempts if a.number == only]
    storage = ctx.services.storage
    actions = [a.log_location.rsplit("/", 2)[0] + "/actions.log" for a in attempts[:1] if a.log_location]
    if not attempts:
        print(f"{instance} has no attempts yet", file=sys.stderr)
        return 1
    for a in attempts:
        print(f"==> {a.id}  {a.status.value}  {a.log_location} <==", flush=True)
        try:
            sys.stdout.write(storage.read_bytes(a.log_location).decode("utf-8", "replace"))
        except TailraceError as exc:
            print(f"(no log: {exc})")
    for uri in actions:
        if only is None and storage.exists(uri):
            print(f"==> actions fired by {instance}  {uri} <==", flush=True)
            sys.stdout.write(storage.read_bytes(uri).decode("utf-8", "replace"))
    return 0


# --- activation preview ---------------------------------------------------------------------------


def _register_preview(sub: Any) -> None:
    p = sub.add_parser(
        "preview-activation",
        help="list the instances activating a pipeline would create now (the backfill)",
        description="Read the pipeline's latest definition from the metadata database and list, period by period, "
        "the instances that activate-pipeline would create at once: every missed period from a past start. "
        f"Exits 3 when there are more than --threshold periods (default {BACKFILL_CONFIRM}), so a script can ask "
        "before activating.",
    )
    p.add_argument("--pipeline-id", required=True)
    p.add_argument(
        "--start-timestamp", metavar="TIME", help="first period starts here (YYYY-MM-DDTHH:MM:SS, UTC)"
    )
    add_parameter_value_args(p)
    p.add_argument("--threshold", type=int, default=BACKFILL_CONFIRM, metavar="N")
    p.set_defaults(func=_preview)


def _preview(args: argparse.Namespace, ctx: Any) -> int:
    start = None
    if args.start_timestamp:
        try:
            start = parse_dp(args.start_timestamp)
        except ValueError:
            raise UsageError(
                f"--start-timestamp must look like 2015-04-07T00:00:00; found {args.start_timestamp!r}"
            )
    values = parameter_values_from_args(args, ctx) or None
    service = ctx.services.pipeline_service()
    preview = service.preview_activation(args.pipeline_id, start_timestamp=start, parameter_values=values)
    for w in preview:
        for iid in w.instances:
            print(f"{format_dp(w.run_at)}  {iid}")
    count = sum(len(w.instances) for w in preview)
    print(f"{len(preview)} period(s), {count} instance(s) would be created now", file=sys.stderr)
    if len(preview) > args.threshold:
        print(f"more than {args.threshold} periods: confirm before activating", file=sys.stderr)
        return 3
    return 0
