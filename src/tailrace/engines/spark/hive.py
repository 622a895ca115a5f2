"""SparkHiveEngine: the Hive engine's statements, with each query run by Spark SQL.

Everything around the query is the DuckDB engine's own code (HiveEngine): splitting and variable
substitution, DDL and the metastore, partitions, SET, errors located in the script, and the
writer that turns rows into Hive's text files (`\\N`, the table's delimiters, Java's number
printing, `000000_0`) and commits them atomically. Only `_translate` differs: the Hive query is
handed to Spark (which speaks HiveQL for queries), over the table's files staged in a directory
every worker reads; Spark writes the result as Parquet under that directory and the writer reads
it from there. So the bytes of an output file are the same on both engines by construction, and
the work (scans, JSON, joins, sorts, aggregations) runs on the cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlglot import exp

from tailrace.engines.hive import prune, serde, views
from tailrace.engines.hive.engine import HiveEngine
from tailrace.engines.hive.functions import REFUSED, check_names
from tailrace.engines.hive.locate import Where
from tailrace.engines.hive.sandbox import refuse_file_functions
from tailrace.engines.hive.translate import Translated, TranslateError, cte_reference
from tailrace.engines.hive.udtf import group_keys
from tailrace.engines.metastore import Metastore, TableSpec
from tailrace.engines.result import Malformed
from tailrace.engines.spark import dialect, reader, udfs
from tailrace.engines.spark.session import first_line
from tailrace.storage import Storage

POSITIONED = "__p"


class SparkHiveEngine(HiveEngine):
    """HiveEngine whose queries run on a SparkSession (one per script run: its own views)."""

    def __init__(
        self,
        storage: Storage,
        metastore: Metastore,
        *,
        session: Any,
        work_dir: Path,
        threads: int | None = None,
        timezone: str = "UTC",
    ) -> None:
        super().__init__(storage, metastore, work_dir=work_dir, threads=threads, timezone=timezone)
        self.spark = session
        self.group = f"tailrace-{uuid.uuid4().hex[:12]}"
        self._n = 0
        self._spark_views: dict[str, str] = {}
        self._all_views: set[str] = set()
        self._short: dict[str, int] = {}
        self._short_seen: dict[tuple[str, tuple[str, ...]], int] = {}
        self._source_of: dict[str, str] = {}
        """Staged file -> the file it was staged from (the same input read by two statements)."""
        self._cancel_lock = threading.Lock()
        self._udfs: set[str] = set()
        """The Python UDFs registered on this run's session (spark/udfs.py)."""

    def interrupt(self) -> None:
        super().interrupt()
        with self._cancel_lock:
            try:
                self.spark.sparkContext.cancelJobGroup(self.group)
            except Exception:  # no context (Spark Connect) or already stopped
                try:
                    self.spark.interruptTag(self.group)
                except Exception:
                    pass

    # --- the one step that differs ---------------------------------------------------------

    def _translate(self, where: Where, query: exp.Expr, *, stable: bool = True) -> Translated:
        refuse_file_functions(where, query)
        q = query.copy()
        check_names(q)
        for node in q.find_all(exp.Anonymous):
            if node.name.lower() in REFUSED:
                raise TranslateError(
                    f"function {node.name.lower()} is not supported by tailrace hive: "
                    f"{REFUSED[node.name.lower()]}",
                    node,
                )
        self._filters = prune.partition_filters(query)
        # Views are made afresh for every statement: an earlier one may have written the table.
        self._spark_views = {}
        dialect.prepare(q)
        inputs: list[str] = []
        self._replace(where, q, inputs, 0)
        if stable and isinstance(q, exp.Select):
            _stable_order(q)
        sql = dialect.to_spark(q)
        udfs.register_used(self.spark, sql, self._udfs)
        out = self.work_dir / "results" / f"r{self._next()}"
        try:
            self._spark_job(sql, out)
        except Exception as exc:
            if self._interrupt.fired:
                raise self._stopped(where, _empty(where))
            raise where.error(dialect.hive_message(first_line(exc)), None)
        files = sorted(str(p) for p in out.glob("part-*.parquet"))
        names = _names_of(out)
        listed = "[" + ", ".join(serde.sql_str(f) for f in files) + "]"
        cols = ", ".join(f"{serde.ident(f'c{i}')} AS {serde.ident(n)}" for i, n in enumerate(names))
        return Translated(f"SELECT {cols} FROM read_parquet({listed})", [], inputs, 0)

    def _spark_job(self, sql: str, out: Path) -> None:
        sc = self.spark.sparkContext
        sc.setJobGroup(self.group, "tailrace hive", interruptOnCancel=True)
        df = self.spark.sql(sql)
        names = df.columns
        renamed = df.toDF(*[f"c{i}" for i in range(len(names))])
        # Spark's part files come out in partition order, which is the global ORDER BY order.
        renamed.write.mode("overwrite").parquet(str(out))
        (out / "_names").write_text("\n".join(n.replace("\n", " ") for n in names), encoding="utf-8")

    def _next(self) -> int:
        self._n += 1
        return self._n

    # --- tables -----------------------------------------------------------------------------

    def _replace(self, where: Where, q: exp.Expr, inputs: list[str], depth: int) -> None:
        for table in list(q.find_all(exp.Table)):
            if not table.name or cte_reference(table, q):
                continue
            if isinstance(table.parent, exp.Schema):
                continue
            spec = self._require(where, table)
            alias = table.alias or table.name
            if views.VIEW_KEY in spec.properties:
                if depth > 16:
                    raise TranslateError(f"view {spec.qualified_name} refers to itself", table)
                view = views.resolved(spec).query
                assert view is not None
                view = view.copy()
                self._replace(where, view, inputs, depth + 1)
                table.replace(exp.Subquery(this=view, alias=exp.TableAlias(this=exp.to_identifier(alias))))
                continue
            name = self._spark_view(where, table, spec)
            renamed = exp.Table(
                this=exp.to_identifier(name, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(alias)),
            )
            sample = table.args.get("sample")
            if sample is not None and sample.args.get("bucket_numerator") is not None:
                bare = exp.Table(this=exp.to_identifier(name, quoted=True))
                table.replace(dialect.bucket_sample(bare, sample, alias))
            else:
                if sample is not None:
                    renamed.set("sample", sample.copy())
                table.replace(renamed)
            if spec.qualified_name not in inputs:
                inputs.append(spec.qualified_name)

    def _spark_view(self, where: Where, table: exp.Table, spec: TableSpec) -> str:
        if spec.qualified_name in self._spark_views:
            return self._spark_views[spec.qualified_name]
        pieces: list[tuple[tuple[tuple[str, str], ...], list[str]]] = []
        if spec.partitioned_by:
            filters = self._filters.get(spec.name)
            types = dict(spec.partitioned_by)
            for part in self.metastore.list_partitions(spec.database, spec.name):
                if prune.keep(part.values, filters, types):
                    pieces.append((part.values, self._staged(self.files.list(part.location).files)))
            if not pieces:
                pieces.append(((), []))
        else:
            listing = self.files.list(spec.location)
            if not listing.exists and spec.external:
                raise where.error(
                    f"input folder {spec.location} of table {spec.name} does not exist "
                    f"({self._describe_location(spec.location)})",
                    table,
                )
            pieces.append(((), self._staged(listing.files)))
        index = {f: i for i, f in enumerate(f for _, files in pieces for f in files)}
        self._count_short(spec, list(index))
        try:
            df = reader.frame(self.spark, spec, pieces, index)
        except reader.ReadError as exc:
            raise where.error(str(exc), table)
        name = re.sub(r"\W", "_", f"__t_{spec.database}_{spec.name}")
        # `__pos` only where the tie-breaker needs it, so `SELECT *` never sees it.
        df.drop(reader.POS).createOrReplaceTempView(name)
        df.createOrReplaceTempView(name + POSITIONED)
        self._spark_views[spec.qualified_name] = name
        self._all_views.add(name)
        return name

    def _count_short(self, spec: TableSpec, files: list[str]) -> None:
        """Short lines of the table's files, counted once per run for the same files (a Spark
        job of its own: the query's result has no room for the DuckDB engine's flag column)."""
        originals = tuple(sorted(self._source_of.get(f, f) for f in files))
        key = (spec.qualified_name, originals)
        if key not in self._short_seen:
            self._short_seen[key] = reader.short_lines(self.spark, spec, files)
        self._short[spec.qualified_name] = self._short_seen[key]

    def _flags(self, tr: Translated, rows: str = "__result") -> Malformed:
        # Short lines of the tables the statement read; bad JSON is not counted on Spark.
        return Malformed(short_lines=sum(self._short.get(t, 0) for t in tr.input_tables))

    def _staged(self, files: list[str]) -> list[str]:
        """The files linked into this run's staging directory (the DP `stage` step): every
        worker reads them there, so a cluster needs only the staging directory shared."""
        target = self.work_dir / "staged"
        target.mkdir(parents=True, exist_ok=True)
        out: list[str] = []
        for f in files:
            src = Path(f)
            if src.resolve().is_relative_to(self.work_dir.resolve()):
                out.append(str(src))
                continue
            dst = target / f"{len(os.listdir(target)):06d}-{_safe(src.name)}"
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            self._source_of[str(dst)] = str(src)
            out.append(str(dst))
        return out

    def _write(self, where: Where, tr: Translated, spec: TableSpec, location: str, *, overwrite: bool) -> Any:
        # The Spark result read by the writer; its Parquet files go once committed.
        try:
            return super()._write(where, tr, spec, location, overwrite=overwrite)
        finally:
            self._forget_results()

    def _forget_results(self) -> None:
        shutil.rmtree(self.work_dir / "results", ignore_errors=True)

    def close(self) -> None:
        for name in self._all_views:
            for view in (name, name + POSITIONED):
                try:
                    self.spark.catalog.dropTempView(view)
                except Exception:
                    pass
        for sub in ("results", "staged"):
            shutil.rmtree(self.work_dir / sub, ignore_errors=True)
        super().close()


def _safe(name: str) -> str:
    return re.sub(r"[^\w.\-]", "_", name)


def _names_of(out: Path) -> list[str]:
    text = (out / "_names").read_text(encoding="utf-8")
    return text.split("\n") if text else []


def _empty(where: Where) -> Any:
    from tailrace.engines.result import ScriptResult

    return ScriptResult(source=where.source)


def _stable_order(q: exp.Select) -> None:
    """The DuckDB engine's deterministic orders (engines/hive/translate.py _finish_top): GROUP BY
    alone comes out in key order, and a LIMIT keeps the first keys; SELECT DISTINCT (a GROUP BY
    of every column in Hive) too; ORDER BY ties keep input order (one table) or fall back to
    every selected column (aggregates)."""
    order = q.args.get("order")
    if q.args.get("distinct"):
        if order is None and not q.args.get("group"):
            keys = [
                exp.Ordered(this=exp.Literal.number(i + 1), nulls_first=True)
                for i in range(len(q.expressions))
            ]
            q.set("order", exp.Order(expressions=keys))
        return
    aggregated = bool(q.args.get("group")) or any(
        agg.find_ancestor(exp.Window, exp.Subquery) is None
        for e in q.expressions
        for agg in e.find_all(exp.AggFunc)
    )
    if order is None and q.args.get("group"):
        keys = [exp.Ordered(this=k.copy(), nulls_first=True) for k in group_keys(q.args["group"])]
        q.set("order", exp.Order(expressions=keys))
    elif order is not None and aggregated:
        for i in range(len(q.expressions)):
            order.append("expressions", exp.Ordered(this=exp.Literal.number(i + 1), nulls_first=True))
    elif order is not None:
        frm = q.args.get("from_") or q.args.get("from")
        source = frm.this if frm is not None else None
        if (
            isinstance(source, exp.Table)
            and source.name.startswith("__t_")
            and not q.args.get("joins")
            and not any(isinstance(e, exp.Star) or e.is_star for e in q.expressions)
        ):
            alias = source.alias_or_name
            source.set("this", exp.to_identifier(source.name + POSITIONED, quoted=True))
            order.append("expressions", exp.Ordered(this=exp.column(reader.POS, table=alias, quoted=True)))
