"""`tailrace agent`: tail access logs and ship them to the object store (fluentd in_tail + out_s3)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tailrace.errors import ConfigError, UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "agent",
        help="tail access logs, parse, buffer durably and ship them to the object store",
        description=(
            "Follow log files as fluentd's in_tail does (globs, rotation, copytruncate), parse them "
            "(apache2, apache, nginx, json, ltsv, regex, none), buffer them durably and ship "
            "time-sliced gzip objects to the object store as out_s3 does, each line exactly once. "
            "`tailrace agent -c agent.toml` runs; `--check` validates; `tailrace agent status` reports."
        ),
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["run", "status", "init"],
        default="run",
        help="run (default), status, or init (write a sample agent.toml and access log to try it on)",
    )
    p.add_argument("-c", "--agent-config", dest="agent_config", metavar="FILE", help="agent TOML file")
    p.add_argument(
        "--dir", default=".", metavar="DIR", help="init: where to write agent.toml and logs/ (default .)"
    )
    p.add_argument("--force", action="store_true", help="init: overwrite an existing agent.toml")
    p.add_argument(
        "--check", action="store_true", help="validate the config, print the effective config, and exit"
    )
    p.add_argument(
        "--drain",
        action="store_true",
        help="read every file to its end, ship everything, and exit (treats the files as complete)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on stop, keep shipping for at most this long (default 30); unshipped chunks stay buffered",
    )
    p.add_argument("--hostname", help="value of ${hostname} and %%{hostname} (default: this machine's name)")
    p.add_argument(
        "--format",
        choices=["text", "json", "prometheus", "toml"],
        default=None,
        help="output format of status/--check",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=_run)


def _load(args: argparse.Namespace, ctx: Any) -> Any:
    from tailrace.agent.configfile import load_config

    return load_config(Path(args.agent_config), home=ctx.settings.home, hostname=args.hostname)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    import logging

    if args.action == "init":
        from tailrace.sample.agentinit import write_sample

        written = write_sample(Path(args.dir), force=args.force)
        for path in written:
            print(f"wrote {path}")
        config = written[0]
        print(f"next: tailrace agent -c {config} --check, then tailrace agent -c {config} --drain")
        return 0
    if not args.agent_config:
        raise UsageError("-c/--agent-config FILE is required (`tailrace agent init` writes a sample)")
    config = _load(args, ctx)
    if args.check:
        return _check(config, args.format or "toml")
    if args.action == "status":
        return _status(config, args.format or "text")
    if args.format:
        raise UsageError("--format applies to `tailrace agent status` and `--check`")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for warning in config.warnings:
        logging.getLogger("tailrace.agent").warning(warning)
    from tailrace.agent.core import Agent

    agent = Agent(config, storage=ctx.services.storage, sinks=_endpoint_sinks(config, ctx))
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logging.getLogger("tailrace.agent").info("signal %d: stopping", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    started = time.monotonic()
    done = agent.run(stop, drain=args.drain, shutdown_timeout=args.shutdown_timeout)
    status = agent.status()
    for s in status["sources"]:
        print(
            f"{s['id']}: read {s['lines_read']} lines ({s['bytes_read']} bytes), shipped {s['lines_shipped']}, "
            f"malformed {s['lines_malformed']} in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
        )
    if not done:
        print(
            "tailrace agent: some chunks are still buffered; they are shipped on the next start",
            file=sys.stderr,
        )
    return 0 if done or not args.drain else 1


def _endpoint_sinks(config: Any, ctx: Any) -> dict[str, Any]:
    """A [[match]] with its own s3_endpoint (or credentials) gets its own S3 client."""
    from tailrace.agent.output import StoreSink
    from tailrace.storage import Storage
    from tailrace.storage.s3 import S3Store

    sinks = {}
    s = ctx.settings
    for m in config.matches:
        if not (m.s3_endpoint or m.aws_key_id) or not m.path.startswith("s3"):
            continue
        store = S3Store(
            endpoint_url=m.s3_endpoint or s.s3_endpoint_url,
            region=m.s3_region or s.s3_region,
            access_key_id=m.aws_key_id or s.aws_access_key_id,
            secret_access_key=m.aws_sec_key or s.aws_secret_access_key,
        )
        sinks[m.id] = StoreSink(Storage(home=s.home, s3=store).resolve(m.path))
    return sinks


def _check(config: Any, fmt: str) -> int:
    from tailrace.agent.configfile import render_toml
    from tailrace.agent.core import Agent

    # Building the agent compiles every parser regex and formatter; nothing is opened or read.
    try:
        Agent(config, sinks=_null_sinks(config))
    except ValueError as exc:
        raise ConfigError(str(exc))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    values = config.effective()
    if fmt == "json":
        print(json.dumps(values, indent=2))
    else:
        print(f"# effective config of {config.origin} (valid)")
        print(render_toml(values))
    return 0


def _null_sinks(config: Any) -> dict[str, Any]:
    from tailrace.agent.core import ERRORS_ID
    from tailrace.agent.output import StdoutSink

    return {m.id: StdoutSink() for m in config.matches} | {ERRORS_ID: StdoutSink()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _status(config: Any, fmt: str) -> int:
    from tailrace.agent.metrics import prometheus

    path = config.system.state_dir / "status.json"
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no status at {path}: the agent for {config.origin} has not run yet")
    running = status.get("state") != "stopped" and _alive(int(status.get("pid", 0)))
    if fmt == "json":
        print(json.dumps({**status, "running": running}, indent=2))
        return 0
    if fmt == "prometheus":
        text = prometheus(status)
        print(text.replace("tailrace_agent_up 1", f"tailrace_agent_up {int(running)}"), end="")
        return 0
    age = time.time() - float(status.get("updated", 0))
    state = "running" if running else "stopped"
    print(f"agent pid {status.get('pid')} on {status.get('hostname')}: {state}, status {age:.0f}s old")
    for s in status["sources"]:
        print(f"\nsource {s['id']} (tag {s['tag']}, {s['files']} file(s): {', '.join(s['paths'])})")
        for key in (
            "bytes_read",
            "lines_read",
            "lines_parsed",
            "lines_malformed",
            "lines_buffered",
            "lines_shipped",
            "lag_bytes",
        ):
            print(f"  {key:<16} {s[key]}")
        if s.get("paused"):
            print(f"  paused           {s['paused']}")
        if s.get("malformed_reasons"):
            print(f"  malformed        {s['malformed_reasons']}")
        if s.get("last_error"):
            print(f"  last error       {s['last_error']}")
    for o in status["outputs"]:
        print(f"\noutput {o['id']} ({o['type']} {o['path']})")
        for key in ("buffer_bytes", "chunks_queued", "objects_shipped", "bytes_shipped", "retries"):
            print(f"  {key:<16} {o[key]}")
        if o.get("last_error"):
            print(f"  last error       {o['last_error']} (retry in {o['retry_in']:.1f}s)")
    return 0
