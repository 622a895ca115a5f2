"""`tailrace run`: run a pipeline definition once over its due periods (the backfill)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailrace.cli.params import add_parameter_value_args, parameter_values_from_args
from tailrace.cli.progress import Progress
from tailrace.clock import parse_dp
from tailrace.errors import UsageError

if TYPE_CHECKING:
    from tailrace.runtime.local import RunReport


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a pipeline definition once over every due period",
        description="Plan every period of the definition's Schedule from its startDateTime up to endDateTime, "
        "occurrences, --until or now (whichever comes first), run each period's activities in dependency "
        "order, and print one line per instance. Exits 1 if any instance failed.",
        epilog="example: tailrace run log-pipeline.json --until 2012-12-26T00:00:00",
    )
    p.add_argument("definition", metavar="FILE", help="pipeline definition (file form or API wire form JSON)")
    add_parameter_value_args(p)
    p.add_argument("--until", metavar="TIME", help="plan periods before this UTC time (YYYY-MM-DDTHH:MM:SS)")
    p.add_argument("--pipeline-id", metavar="ID", help="pipeline id for @pipelineId and log paths")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress counter, warnings or summary on stderr"
    )
    p.set_defaults(func=_run)


def print_summary(report: RunReport, out: Any = None) -> None:
    out = out or sys.stderr
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    periods = len({r.instance.scheduled_start for r in report.results})
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{periods} period(s), {len(report.results)} instance(s): {parts or 'none'}", file=out)
    totals = report.totals()
    if totals.get("rows_written"):
        print(f"  rows written: {totals['rows_written']:,}", file=out)
    # Malformed input is reported per instance: two activities reading one folder see it twice.
    for r in report.results:
        lines, records = r.summary.get("malformed_lines", 0), r.summary.get("malformed_json", 0)
        if lines or records:
            print(
                f"  {r.instance.id}: {lines:,} malformed line(s) (too few fields; missing values read as NULL), "
                f"{records:,} malformed JSON record(s) (json_tuple gave NULLs)",
                file=out,
            )
    for r in report.results:
        if r.status == "FAILED":
            print(
                f"  {r.instance.id}: {r.error}" + (f"\n    log: {r.log_uri}" if r.log_uri else ""), file=out
            )


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.definition import load_file
    from tailrace.runtime.local import LocalRunner

    until = None
    if args.until:
        try:
            until = parse_dp(args.until)
        except ValueError:
            raise UsageError(f"--until must be a date-time like 2012-12-26T00:00:00; found {args.until!r}")
    defn = load_file(args.definition)
    values = parameter_values_from_args(args, ctx)
    services = ctx.services
    counter = Progress("instances")

    def progress(line: str) -> None:
        if args.quiet:
            return
        if line.startswith("running "):  # one per attempt: the counter shows it instead
            counter.update(current=line)
        else:
            counter.note(line)

    def tally(ended: int, planned: int) -> None:
        if not args.quiet:
            counter.update(done=ended, total=planned)

    for warning in getattr(defn, "warnings", ()) or ():
        progress(f"warning: {warning}")
    runner = LocalRunner(
        storage=services.storage,
        home=ctx.settings.home,
        engines=services.engines,
        hive_engine=services.settings.hive_engine,
        databases=services.database_access,
        echo=lambda line: print(line, flush=True),
        progress=progress,
        tally=tally,
    )
    report = runner.run(defn, values=values, until=until, pipeline_id=args.pipeline_id)
    if not args.quiet:
        if report.results:
            counter.finish()
        print_summary(report)
        where = logs_location(report, ctx.settings.home)
        if where:
            print(f"attempt logs: {where}", file=sys.stderr)
    return 1 if report.failed else 0


def logs_location(report: RunReport, home: Path) -> str | None:
    """Where this run's attempt logs are: the pipeline's folder under pipelineLogUri (or the
    data directory), with the local path when the embedded object store holds it."""
    uris = [r.log_uri for r in report.results if r.log_uri]
    if not uris:
        return None
    marker = f"/{report.pipeline_id}/"
    first = uris[0]
    folder = first[: first.index(marker) + len(marker)] if marker in first else first.rsplit("/", 1)[0] + "/"
    if folder.startswith("s3://"):
        local = home.resolve() / "s3" / folder.removeprefix("s3://")
        if local.is_dir():
            return f"{folder} (on disk: {local}/)"
    return folder
