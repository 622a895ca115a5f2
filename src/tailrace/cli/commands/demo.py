"""`tailrace demo`: a real log pipeline on embedded defaults, in under a minute."""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from datetime import timedelta
from typing import Any

from tailrace.cli.commands.run import print_summary
from tailrace.clock import format_dp


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="generate access logs and run the seed log pipeline on them (embedded defaults)",
        description="Generate a few days of fluentd-format access logs for two web servers into the embedded "
        "object store, run the seed AWS Data Pipeline definition over them with the backfill (HiveActivity on "
        "DuckDB), and print the per-path hit counts of the last day. Safe to run again.",
    )
    p.add_argument("--days", type=int, default=3, help="days of logs to generate and process (default 3)")
    p.add_argument("--per-hour", type=int, default=900, help="requests per host per hour (default 900)")
    p.set_defaults(func=_run)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _read_stats(storage: Any, uri: str) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    for raw in storage.iter_lines(uri):
        line = raw.decode("utf-8").rstrip("\n")
        if not line:
            continue
        fields = next(csv.reader(io.StringIO(line), delimiter="\t", quotechar='"'))
        rows.append((fields[0], int(fields[1])))
    return rows


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.definition import loads
    from tailrace.runtime.local import LocalRunner
    from tailrace.sample.demo import DEMO_START, hive_script_text, seed_definition_text, write_demo_logs

    if args.days < 1 or args.days > 60:
        from tailrace.errors import UsageError

        raise UsageError("--days must be between 1 and 60")
    started = time.monotonic()
    settings = ctx.settings
    services = ctx.services
    home = settings.home.resolve()
    _say(f"tailrace demo — data directory {home}")
    _say(f"[1/3] generating {args.days} day(s) of access logs for 2 hosts (fluentd out_s3 format) ...")
    lines = write_demo_logs(home / "s3", days=args.days, per_hour=args.per_hour)
    _say(f"      {lines:,} lines in s3://memorycraft-us-log/logs/YYYY-MM-DD/<host>-HH_0.gz")
    _say("      (and the same under s3://memorycraft-log/logs/YYYYMMDD/ for `tailrace hive -f whatislog.q`)")
    definition_path = home / "demo" / "log-pipeline.json"
    definition_path.parent.mkdir(parents=True, exist_ok=True)
    definition_path.write_text(seed_definition_text())
    (definition_path.parent / "whatislog.q").write_text(hive_script_text())
    until = DEMO_START + timedelta(days=args.days)
    # The seed's schedule has no end, so activating it in the service backfills every day since
    # 2012; this copy ends with the demo's logs, for trying the service (README's tour).
    bounded = definition_path.parent / "log-pipeline-demo.json"
    bounded.write_text(
        seed_definition_text().replace(
            '"period": "1 Days"}', f'"period": "1 Days", "endDateTime": "{format_dp(until)}"}}', 1
        )
    )
    _say(f"[2/3] running the seed pipeline ({definition_path}) up to {format_dp(until)} ...")
    defn = loads(definition_path.read_text(), source=str(definition_path))
    runner = LocalRunner(
        storage=services.storage,
        home=home,
        engines=services.engines,
        hive_engine=services.settings.hive_engine,
        echo=lambda line: _say("      " + line),
        progress=lambda line: None,
    )
    report = runner.run(defn, until=until, pipeline_id="df-DEMO0000000000000000")
    print_summary(report)
    if report.failed:
        return 1
    last_day = (until - timedelta(days=1)).strftime("%Y-%m-%d")
    uri = f"s3://memorycraft-us-log-archive/stats/{last_day}/"
    _say(f"[3/3] hits per path on {last_day} ({uri}):")
    rows = _read_stats(services.storage, uri)
    width = max((len(p) for p, _ in rows), default=4)
    print(f"{'path':<{width}}  {'hits':>7}")
    print(f"{'-' * width}  {'-' * 7}")
    for path, count in rows:
        print(f"{path:<{width}}  {count:>7,}")
    print(f"{'total':<{width}}  {sum(c for _, c in rows):>7,}")
    _say(f"done in {time.monotonic() - started:.1f} s. Try next (see README.md):")
    _say(f"  tailrace run {definition_path} --until {format_dp(until)}")
    _say(f"  tailrace hive -f {definition_path.parent / 'whatislog.q'} -d DATE={last_day.replace('-', '')}")
    _say("  tailrace hive -e 'SELECT path, cnt FROM statLog ORDER BY cnt DESC LIMIT 5'")
    return 0
