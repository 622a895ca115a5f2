"""The service's processes: `tailrace up`, `scheduler`, `worker`; and `logs` and
`preview-activation`, which read the metadata database (TAILRACE_HOME's SQLite file, or
TAILRACE_DATABASE_URL) directly. The AWS-style pipeline commands are in aws.py."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
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
        help="attempt lease when an object sets no reportProgressTimeout (default 120, [execution] lease)",
    )
    p.add_argument(
        "--poll",
        type=float,
        metavar="SECONDS",
        help="seconds between polls when idle (default 1, [execution] poll)",
    )
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="on Ctrl-C, how long running attempts may finish before they are given back "
        "(default 10, [execution] grace)",
    )


def _s3_port(text: str) -> int:
    """--s3-port: a port number, or 'off' (0) for no S3 endpoint."""
    if text.strip().lower() == "off":
        return 0
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number or 'off', got {text!r}")
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535; 0 or 'off' turns it off)")
    return port


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
        "--s3-port",
        type=_s3_port,
        metavar="P",
        help="port of the embedded store's S3 API (default 8041, setting s3_port, env TAILRACE_S3_PORT); "
        "'off' or 0 turns it off",
    )
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
    p.add_argument(
        "--offset", type=int, default=0, metavar="BYTES", help="start this many bytes into each log"
    )
    p.add_argument("--limit", type=int, metavar="BYTES", help="print at most this many bytes of each log")
    p.add_argument("--tail", type=int, metavar="BYTES", help="print only the last BYTES of each log")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow the latest attempt (or --attempt N) as it runs, until it ends; "
        "waits for a first attempt if there is none yet",
    )
    p.set_defaults(func=_logs)


def _options(args: argparse.Namespace, ctx: Any) -> Any:
    """Flags over [execution] in tailrace.toml / TAILRACE_EXECUTION__*."""
    import logging

    execution = ctx.settings.execution
    lease = args.lease if args.lease is not None else execution.lease
    if lease <= 0:
        raise UsageError(f"--lease must be positive; found {lease}")
    # The service's own log (pools started and stopped, actions fired, lost leases) on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for name in (
        "tailrace.service",
        "tailrace.runners",
        "tailrace.worker",
        "tailrace.scheduler",
        "tailrace.processes",
    ):
        logging.getLogger(name).setLevel(logging.INFO)
    _warn_identity(execution)
    return ctx.services.processes.options(
        lease=lease,
        poll=args.poll if args.poll is not None else execution.poll,
        grace=args.grace if args.grace is not None else execution.grace,
    )


def _warn_identity(execution: Any) -> None:
    """Say at start-up who shell-like activities run as; loudly when that can be root."""
    import os

    if os.geteuid() != 0:
        return
    if execution.allow_root:
        bar = "!" * 78
        print(
            f"{bar}\nWARNING: allow_root = true under [execution]: a pipeline's shell commands may run AS ROOT\n"
            f"on this host (run_as = {execution.run_as!r}). Any key holder can then read every secret here.\n{bar}",
            file=sys.stderr,
        )
    else:
        who = execution.run_as or "nobody"
        mapped = f"; per owner: {dict(execution.users)}" if execution.users else ""
        print(f"tailrace: shell-like activities run as OS user '{who}'{mapped}", file=sys.stderr)


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


def _serve(assembly: Any, stop: threading.Event, *, banner: list[str]) -> int:
    """Start the loops in order, print the banner, serve until a signal, stop in reverse."""
    assembly.start()
    for line in [*banner, *assembly.banner()]:
        print(f"{assembly.name}: {line}", flush=True)
    return int(assembly.serve(stop, say=lambda line: print(line, file=sys.stderr, flush=True)))


def _describe_db(ctx: Any) -> str:
    from sqlalchemy.engine import make_url

    return make_url(ctx.settings.effective_database_url).render_as_string(hide_password=True)


def _up(args: argparse.Namespace, ctx: Any) -> int:
    began = time.monotonic()
    stop = _stop_signals()
    settings = ctx.settings
    workers = args.workers if args.workers is not None else settings.workers
    assembly = ctx.services.processes.up(
        _options(args, ctx),
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=workers,
        worker_groups=tuple(args.worker_group),
        resources=not args.no_resources,
        http=not args.no_http,
        s3_port=(args.s3_port if args.s3_port is not None else settings.s3_port) or None,
        insecure_no_auth=args.insecure_no_auth,
        began=began,
    )
    return _serve(assembly, stop, banner=[f"metadata {_describe_db(ctx)}, data in {settings.home.resolve()}"])


def _scheduler(args: argparse.Namespace, ctx: Any) -> int:
    stop = _stop_signals()
    assembly = ctx.services.processes.scheduler(_options(args, ctx), service_threads=args.service_threads)
    return _serve(assembly, stop, banner=[f"running against {_describe_db(ctx)}"])


def _worker(args: argparse.Namespace, ctx: Any) -> int:
    stop = _stop_signals()
    if not args.worker_group and not args.resources:
        raise UsageError("name at least one --worker-group G (or '*'), or --resources")
    assembly = ctx.services.processes.worker(
        _options(args, ctx),
        worker_groups=tuple(args.worker_group),
        threads=args.threads,
        resources=args.resources,
        pool_size=args.pool_size,
        name=args.name,
    )
    what = ", ".join(args.worker_group) or "no worker group"
    line = (
        f"{args.threads} runner(s) for {what}"
        + (", hosting resources" if args.resources else "")
        + f" against {_describe_db(ctx)}"
    )
    return _serve(assembly, stop, banner=[line])


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
    if args.follow:
        return _follow(ctx, args.pipeline_id, instance, only, args.offset)
    storage = ctx.services.storage
    actions = [a.log_location.rsplit("/", 2)[0] + "/actions.log" for a in attempts[:1] if a.log_location]
    if not attempts:
        print(f"{instance} has no attempts yet (--follow waits for one)", file=sys.stderr)
        return 1
    for a in attempts:
        print(f"==> {a.id}  {a.status.value}  {a.log_location} <==", flush=True)
        try:
            _print_window(storage, a.log_location, args.offset, args.limit, args.tail)
        except TailraceError as exc:
            print(f"(no log: {exc})")
    for uri in actions:
        if only is None and storage.exists(uri):
            print(f"==> actions fired by {instance}  {uri} <==", flush=True)
            sys.stdout.write(storage.read_bytes(uri).decode("utf-8", "replace"))
    return 0


def _follow(ctx: Any, pipeline_id: str, instance: str, only: int | None, offset: int) -> int:
    """Print an attempt's log as it grows, until the attempt ends: from the task runner's local
    file while it runs (this host's runners), then from the uploaded log, by byte offset (the
    uploaded log is the local file plus the closing status). Exit 0 if it finished, 1 if not."""
    from tailrace.runtime.worker import running_log_path
    from tailrace.state import TERMINAL

    store, storage, home = ctx.services.state, ctx.services.storage, ctx.settings.home.resolve()
    out = sys.stdout.buffer
    current: Any = None
    said_remote = False
    waited_for_upload = 0
    while True:
        with store.transaction(readonly=True) as tx:
            attempts = tx.attempts.for_instance(pipeline_id, instance)
        chosen = [a for a in attempts if only is None or a.number == only]
        latest = chosen[-1] if chosen else None
        if latest is not None and (current is None or latest.id != current.id):
            offset = offset if current is None else 0  # a retry: its log from the start
            said_remote = False
            print(f"==> {latest.id}  on {latest.hostname or '?'}  {latest.log_location} <==", flush=True)
        current = latest
        if current is None:
            time.sleep(0.5)
            continue
        local = running_log_path(home, pipeline_id, current.id)
        if current.status in TERMINAL:
            uploaded = bool(current.log_location) and storage.exists(current.log_location)
            if uploaded:
                _, size = storage.read_range(current.log_location, 0, 0)
                while offset < size:
                    piece, _ = storage.read_range(current.log_location, offset, min(1 << 20, size - offset))
                    if not piece:
                        break
                    out.write(piece)
                    offset += len(piece)
            elif local.exists():  # the upload failed: the runner kept the log here
                offset = _copy_from(local, offset, out)
            elif waited_for_upload < 10:  # the upload follows the status by a moment
                waited_for_upload += 1
                time.sleep(0.5)
                continue
            else:
                print(f"{current.id} ended ({current.status.value}) with no log", file=sys.stderr)
            out.flush()
            return 0 if current.status.value == "FINISHED" else 1
        if local.exists():
            before = offset
            offset = _copy_from(local, offset, out)
            if offset > before:
                continue
        elif not said_remote:
            where = current.hostname or "another host"
            print(f"({current.id} runs on {where}; its log is uploaded when it ends)", file=sys.stderr)
            said_remote = True
        time.sleep(0.5)


def _copy_from(path: Path, offset: int, out: Any) -> int:
    """Copy what the file has past offset (up to 1 MiB) to out; the new offset."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            piece = fh.read(1 << 20)
    except FileNotFoundError:  # uploaded and removed just now
        return offset
    out.write(piece)
    out.flush()
    return offset + len(piece)


def _print_window(storage: Any, uri: str, offset: int, limit: int | None, tail: int | None) -> None:
    """Copy a window of a log to stdout in 1 MiB pieces (a log of any size, bounded memory)."""
    from tailrace.errors import UsageError

    if offset < 0 or (limit is not None and limit < 0) or (tail is not None and tail < 0):
        raise UsageError("--offset, --limit and --tail take a number of bytes (0 or more)")
    _, size = storage.read_range(uri, 0, 0)
    if tail is not None:
        offset = max(0, size - tail)
    end = size if limit is None else min(size, offset + limit)
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    while offset < end:
        piece, _ = storage.read_range(uri, offset, min(1 << 20, end - offset))
        if not piece:
            break
        if out is not None:
            sys.stdout.flush()
            out.write(piece)
        else:
            sys.stdout.write(piece.decode("utf-8", "replace"))
        offset += len(piece)
    sys.stdout.flush()


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
