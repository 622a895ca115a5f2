"""`tailrace lifecycle`: apply bucket lifecycle rules to the embedded object store."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from tailrace.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lifecycle",
        help="apply S3 lifecycle rules (transitions to archive classes, expiration) to the embedded store",
        description="Lifecycle rules are set per bucket with `tailrace s3api put-bucket-lifecycle-configuration` "
        "(or `aws s3api ... --endpoint-url` against `tailrace s3 serve`). On a real S3 endpoint S3 applies "
        "them itself and `run` has nothing to do.",
    )
    ls = p.add_subparsers(dest="lifecycle_command", metavar="ACTION", required=True)
    r = ls.add_parser(
        "run",
        help="apply every due action once and print counts and bytes per rule and class",
        description="Move due objects to their storage class, archive them (compressed) or delete them; "
        "finish moves an interrupted run left half-done. One run at a time per store.",
    )
    r.add_argument("--dry-run", action="store_true", help="report what is due without changing anything")
    r.add_argument("--now", metavar="T", help="evaluate the rules at this ISO 8601 time (UTC if no zone)")
    r.add_argument("--bucket", action="append", help="only this bucket (repeatable)")
    r.add_argument("--output", choices=["text", "json"], default="text")
    r.set_defaults(func=_run)


def parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now {text!r}: expected an ISO 8601 time such as 2026-03-09T00:00:00Z")
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.lifecycle import runner
    from tailrace.lifecycle.configs import LifecycleConfigs
    from tailrace.storage.tiered import TieredLocalStore

    now = parse_now(args.now)
    store = ctx.services.storage.s3
    if not isinstance(store, TieredLocalStore):
        print("the object store is an S3 endpoint: S3 applies the buckets' lifecycle rules itself")
        return 0
    configs = LifecycleConfigs(ctx.services.sql_engine).all()
    report = runner.run(store, configs, now, dry_run=args.dry_run, buckets=args.bucket)
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 1 if report.errors else 0
