"""`tailrace hive`: run a Hive script on DuckDB or Spark, like `hive -f script.q -d NAME=VALUE`."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailrace.errors import TailraceError, UsageError

if TYPE_CHECKING:
    from tailrace.engines.hive import StatementResult


def register(sub: Any) -> None:
    p = sub.add_parser(
        "hive",
        help="run a Hive-dialect script on DuckDB or Spark (like hive -f)",
        description="Run a Hive script the way `hive -f` did on EMR, with DuckDB (or Spark: --engine spark) as the engine. "
        "s3:// locations map to $TAILRACE_HOME/s3/BUCKET/KEY unless an S3 endpoint is configured. "
        "Table definitions are kept in the metadata store between runs.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "-f", dest="file", metavar="FILE", help="script file to run (a path, file:// or s3:// URI)"
    )
    src.add_argument("-e", dest="sql", metavar="SQL", help="SQL text to run")
    p.add_argument(
        "-d",
        "--define",
        "--hivevar",
        dest="define",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="variable for ${NAME} and ${hivevar:NAME} (repeatable)",
    )
    p.add_argument(
        "--hiveconf",
        action="append",
        default=[],
        metavar="K=V",
        help="configuration value, as SET K=V (repeatable)",
    )
    p.add_argument("-S", "--silent", action="store_true", help="no progress lines, only results and errors")
    p.add_argument("-v", "--verbose", action="store_true", help="echo each statement before running it")
    p.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="duckdb (in this process, the default) or spark (queries run by Spark SQL)",
    )
    p.add_argument(
        "--master",
        metavar="URL",
        default=None,
        help="with --engine spark: local[N], spark://HOST:PORT or sc://HOST:PORT "
        "(default: [spark] master in tailrace.toml)",
    )
    p.set_defaults(func=_run)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"{flag} needs NAME=VALUE; found {item!r}")
        out[name.strip()] = value
    return out


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """No cyclic garbage collection while the engine loads: DuckDB, sqlglot and SQLAlchemy
    allocate some 70,000 objects the GC tracks, which live until exit: collections triggered
    by those very allocations would walk them again and again, finding nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(args: argparse.Namespace, ctx: Any) -> int:
    with _loading():
        from tailrace.engines.hive import HiveError

        variables = _pairs(args.define, "-d/--define/--hivevar")
        hiveconf = _pairs(args.hiveconf, "--hiveconf")
        text, source = _script(args, ctx)
        if args.master and args.engine != "spark":
            raise UsageError("--master needs --engine spark")
        engine: Any = (
            _spark_engine(ctx, args.master)
            if args.engine == "spark"
            else ctx.services.hive_engine(threads=args.threads)
        )
    err = sys.stderr
    header = hiveconf.get("hive.cli.print.header", "false").lower() == "true"

    def progress(line: str) -> None:
        if not args.silent:
            print(line, file=err, flush=True)

    def on_statement(res: StatementResult) -> None:
        if res.kind in ("SELECT", "SHOW TABLES", "SHOW PARTITIONS", "DESCRIBE"):
            out = sys.stdout
            if header or engine.hiveconf.get("hive.cli.print.header", "").lower() == "true":
                print("\t".join(res.columns), file=out)
            for row in res.select_rows:
                print("\t".join("NULL" if v is None else v for v in row), file=out)
            out.flush()
        if args.silent:
            return
        what = f"{res.kind} {res.table}" if res.table else res.kind
        detail = ""
        if res.kind.startswith(("INSERT", "CREATE TABLE AS")):
            detail = f": {res.rows_written:,} rows"
        elif res.kind == "SELECT":
            detail = f": {len(res.select_rows):,} rows"
        elif res.message:
            detail = f": {res.message}"
        bad = res.malformed
        if bad.total:
            detail += f" ({bad.short_lines:,} short lines, {bad.bad_json:,} bad JSON read as NULL"
            detail += f", {bad.dropped_lines:,} unreadable lines dropped)" if bad.dropped_lines else ")"
        print(f"OK  {what}{detail} ({res.seconds:.1f} s)", file=err, flush=True)

    try:
        try:
            result = engine.run_script(
                text,
                variables,
                source=source,
                echo=progress,
                hiveconf=hiveconf,
                on_statement=on_statement,
                echo_statements=args.verbose,
            )
        except HiveError as exc:
            print(f"FAILED: {exc}", file=err)
            return 1
    finally:
        engine.close()
        if args.engine == "spark":
            from tailrace.engines.spark import session as sessions

            sessions.shutdown()
    if not args.silent:
        print(
            f"Done: {len(result.statements)} statements, {result.rows_written:,} rows written, "
            f"malformed input: {result.malformed_lines:,} short lines, {result.malformed_json:,} bad JSON"
            + (f", {result.dropped_lines:,} unreadable lines dropped" if result.dropped_lines else "")
            + f" ({result.seconds:.1f} s)",
            file=err,
        )
    return 0


def _script(args: argparse.Namespace, ctx: Any) -> tuple[str, str]:
    """The script's text, and its name for messages."""
    if args.file and "://" in args.file:
        # hive -f s3://bucket/script.q worked on EMR; read it through the object store.
        try:
            return ctx.services.storage.read_bytes(args.file).decode("utf-8"), args.file
        except TailraceError as exc:
            raise UsageError(f"cannot read script {args.file}: {exc}")
    if args.file:
        try:
            return Path(args.file).read_text(encoding="utf-8"), args.file
        except OSError as exc:
            raise UsageError(f"cannot read script {args.file}: {exc.strerror or exc}")
    return args.sql, "-e"


def _spark_engine(ctx: Any, master: str | None) -> Any:
    """A Spark-run Hive engine on this installation's store and metastore (pyspark loads here)."""
    from tailrace.engines.spark import session as sessions
    from tailrace.engines.spark.engine import open_hive

    settings = ctx.services.settings
    options = sessions.SparkOptions.from_settings(settings.spark, settings.home).with_master(master)
    try:
        shared, started = sessions.acquire(options)
    except TailraceError as exc:
        raise UsageError(f"--engine spark: {exc}")
    if started:
        print(f"spark: session started on {options.master} in {started:.1f} s", file=sys.stderr)
    sessions.release(shared)
    return open_hive(ctx.services.storage, ctx.services.metastore, shared, options, None)
