"""`tailrace list-runs`: the runs (instances) of a pipeline, selected as `aws datapipeline
list-runs` selects them and read in one REST call."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from tailrace.cli.awscli import emit, make_client, parse_timestamp
from tailrace.errors import UsageError

LIST_RUNS_STATUSES = (
    "waiting",
    "pending",
    "cancelled",
    "running",
    "finished",
    "failed",
    "waiting_for_runner",
    "waiting_on_dependencies",
    "shutting_down",
)

# --- list-runs ------------------------------------------------------------------------------------


def _interval(text: str | None, flag: str) -> list[str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UsageError(
            f"{flag} takes START,END (e.g. 2024-01-01T00:00:00,2024-01-02T00:00:00), got {text!r}"
        )
    for p in parts:
        parse_timestamp(p, flag)
    return parts


def run_query(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The QueryObjects selectors `aws datapipeline list-runs` sends for these arguments."""
    selectors: list[dict[str, Any]] = []
    start = _interval(args.start_interval, "--start-interval")
    scheduled = _interval(args.schedule_interval, "--schedule-interval")
    if start is None and scheduled is None:
        fmt = "%Y-%m-%dT%H:%M:%S"
        start = [(now - timedelta(days=4)).strftime(fmt), now.strftime(fmt)]
    if start is not None:
        selectors.append({"fieldName": "@actualStartTime", "operator": {"type": "BETWEEN", "values": start}})
    if scheduled is not None:
        selectors.append(
            {"fieldName": "@scheduledStartTime", "operator": {"type": "BETWEEN", "values": scheduled}}
        )
    if args.status is not None:
        statuses = [s.strip() for s in args.status.split(",") if s.strip()]
        for s in statuses:
            if s not in LIST_RUNS_STATUSES:
                raise UsageError(f"invalid status {s!r}; choose from {', '.join(LIST_RUNS_STATUSES)}")
        selectors.append(
            {"fieldName": "@status", "operator": {"type": "EQ", "values": [s.upper() for s in statuses]}}
        )
    return {"selectors": selectors}


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """The AWS CLI's list-runs layout: two lines per run under a two-line header."""

    def row(prefix: str, a: Any, b: Any, c: Any, c_width: int) -> str:
        return f"{prefix}  {str(a)[:50]:<50}  {str(b)[:19]:<19}  {str(c)[:c_width]:<{c_width}}"

    lines = [
        row("     ", "Name", "Scheduled Start", "Status", 23),
        row("     ", "ID", "Started", "Ended", 19),
    ]
    lines.append("-" * len(lines[1]))
    for i, run in enumerate(runs):
        g = run.get
        lines.append(
            row(f"{i + 1:4d}.", g("@componentParent", ""), g("@scheduledStartTime", ""), g("@status", ""), 23)
        )
        lines.append(row("     ", g("@id", ""), g("@actualStartTime", ""), g("@actualEndTime", ""), 19))
        lines.append("")
    return "\n".join(lines)


RUNS_PARAMS = {
    "@status": "status",
    "@actualStartTime": "startedBetween",
    "@scheduledStartTime": "scheduledBetween",
}


def runs_params(query: Mapping[str, Any]) -> str:
    """run_query's selectors as the query string of GET /api/v1/pipelines/ID/runs, which reads
    the same instances in one call rather than QueryObjects and DescribeObjects page by page."""
    return urlencode(
        {RUNS_PARAMS[s["fieldName"]]: ",".join(s["operator"]["values"]) for s in query["selectors"]}
    )


def list_runs(args: argparse.Namespace, ctx: Any) -> int:
    query = run_query(args, datetime.now(UTC))
    dp = make_client(args, ctx)
    path = f"/api/v1/pipelines/{quote(args.pipeline_id, safe='')}/runs"
    page = dp.rest("GET", path, query=runs_params(query))
    runs = page["runs"]
    if page.get("truncated"):
        print(
            f"tailrace: only the first {len(runs)} runs; narrow the intervals to see the rest",
            file=sys.stderr,
        )
    return emit(args, runs, lambda: print(runs_table(runs)))
