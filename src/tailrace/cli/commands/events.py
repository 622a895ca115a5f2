"""`tailrace events`: print the events on the bus (the Redis stream when TAILRACE_REDIS_URL is
set; otherwise the outbox in the metadata database, which is what the in-process bus relays).

An operator's command: it reads the bus or the database directly, so it sees every owner's
events; API clients read their own through GET /api/v1/events.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from tailrace.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "events",
        help="print pipeline, instance and attempt events (and --follow new ones)",
        description="Print the events tailrace has committed, oldest first: from the Redis event bus when "
        "TAILRACE_REDIS_URL (or --redis-url) is set, else from the outbox in the metadata database. "
        "With --follow, keep printing new events until Ctrl-C.",
        epilog="example: TAILRACE_REDIS_URL=redis://127.0.0.1:6379/0 tailrace events --follow --output json",
    )
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument(
        "--after",
        metavar="ID",
        type=int,
        default=0,
        help="start after this event id (default 0: from the oldest event kept)",
    )
    p.add_argument("--pipeline-id", metavar="ID", help="only events of this pipeline")
    p.add_argument("--owner", help="only events of pipelines of this owner")
    p.add_argument(
        "--output", choices=["text", "json"], default="text", help="one line per event (default text)"
    )
    p.add_argument("--redis-url", metavar="URL", help="the Redis event bus (env TAILRACE_REDIS_URL)")
    p.add_argument("--redis-stream", metavar="KEY", help="its stream key (env TAILRACE_REDIS_STREAM)")
    p.set_defaults(func=_events)


def _line(event_id: int, position: str, event: Any, output: str) -> str:
    from tailrace.events.model import StatusChanged, to_dict

    if output == "json":
        return json.dumps({"id": event_id, "position": position, **to_dict(event)}, sort_keys=True)
    what = ""
    if isinstance(event, StatusChanged):
        what = f" {event.object_id} {event.old} -> {event.new}"
    return f"{event_id} {event.at.isoformat()} {event.TYPE or '?'} {event.pipeline_id or '-'}{what}"


class _Printer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.failed: BaseException | None = None
        self.done = threading.Event()

    def __call__(self, batch: Sequence[Any]) -> None:
        a = self.args
        try:
            for d in batch:
                e = d.event
                if a.pipeline_id is not None and e.pipeline_id != a.pipeline_id:
                    continue
                if a.owner is not None and e.owner != a.owner:
                    continue
                sys.stdout.write(_line(d.event_id, d.position, e, a.output) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            self.failed = BrokenPipeError()
            self.done.set()


def _events(args: argparse.Namespace, ctx: Any) -> int:
    if args.after < 0:
        raise UsageError(f"--after must be an event id (0 or more); found {args.after}")
    overrides = {"redis_url": args.redis_url, "redis_stream": args.redis_stream}
    ctx.args.setting_overrides = {k: v for k, v in overrides.items() if v is not None}
    printer = _Printer(args)
    if ctx.settings.redis_url:
        return _from_bus(ctx.services.event_bus, args, printer)
    return _from_outbox(ctx.services.state, args, printer)


def _stop_on_signals(done: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _from_bus(bus: Any, args: argparse.Namespace, printer: _Printer) -> int:
    position = bus.position_of(args.after)
    if args.follow:
        _stop_on_signals(printer.done)
        sub = bus.subscribe(printer, after=position)
        try:
            while not printer.done.wait(0.5):
                pass
        finally:
            sub.close()
        return 0
    while not printer.done.is_set():
        batch = bus.read(position, limit=1000)
        if batch.trimmed:
            print("tailrace events: older events were trimmed from the bus", file=sys.stderr)
        if not batch.events:
            break
        printer(batch.events)
        position = batch.position
    return 0


def _from_outbox(store: Any, args: argparse.Namespace, printer: _Printer) -> int:
    from tailrace.events.model import Delivered

    if args.follow:
        _stop_on_signals(printer.done)
    after = args.after
    while not printer.done.is_set():
        records = store.events_after(after, pipeline_id=args.pipeline_id, limit=1000)
        printer([Delivered(event_id=r.id, position=str(r.id), event=r.event) for r in records])
        if records:
            after = records[-1].id
            continue
        if not args.follow or printer.done.wait(0.5):
            break
    return 0
