"""Writing a statement's result (the `__result` temporary table) as Hive writes its files."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tailrace.engines.hive import serde, sqltext
from tailrace.engines.hive.locate import Where
from tailrace.engines.hive.sources import SourceTables
from tailrace.engines.hive.tables import TableFiles, partition_location
from tailrace.engines.hive.translate import FLAG_SHIFT, Translated
from tailrace.engines.metastore import Metastore, PartitionSpec, TableSpec
from tailrace.engines.result import Malformed


class ResultWriter:
    """The writing half of HiveEngine: a statement's result to staged files, committed through
    TableFiles. COPY reads the query itself where it can, else the `__result` table."""

    con: duckdb.DuckDBPyConnection
    metastore: Metastore
    files: TableFiles
    hiveconf: dict[str, str]
    sources: SourceTables

    def _materialize(self, tr: Translated) -> None:
        self.con.execute("DROP TABLE IF EXISTS __result")
        self.con.execute(f"CREATE TEMP TABLE __result AS {tr.sql}")

    def _flags(self, tr: Translated, rows: str = "__result") -> Malformed:
        """The malformed-input counts packed in the flag columns of `rows` (a table or a
        parenthesised query with an alias), summed in one scan."""
        found = Malformed()
        if not tr.flags:
            return found
        sums = ", ".join(f"CAST(coalesce(sum({serde.ident(flag.name)}), 0) AS HUGEINT)" for flag in tr.flags)
        row = self.con.execute(f"SELECT {sums} FROM {rows}").fetchone() or ()
        for value in row:
            packed = int(value or 0)
            found.short_lines += packed % FLAG_SHIFT
            found.bad_json += packed // FLAG_SHIFT
        return found

    def _unmaterialised(self, tr: Translated) -> str | None:
        """The rows the flags are summed over when COPY reads the statement's query itself, not
        a materialised `__result` (which costs a write and the memory of every row): when there
        are no flags, or the query is a scan of one table in memory (summing re-runs it without
        its ORDER BY; a second read of the input files would cost more than the table it
        saves). None: materialise."""
        if not tr.flags:
            return ""
        if not self.sources.scans_kept(tr.sql):
            return None
        rows = sqltext.unordered(tr.sql)
        return None if rows is None else f"({rows}) AS __rows"

    def _converted(
        self, tr: Translated, spec: TableSpec, rel: duckdb.DuckDBPyRelation, skip_tail: int = 0
    ) -> list[str]:
        names, types = rel.columns, [str(t) for t in rel.types]
        n = len(names) - tr.hidden - skip_tail
        csv = spec.row_format == "csv_serde"
        return [
            serde.write_expr(serde.ident(names[i]), types[i], spec.columns[i][1], csv=csv, spec=spec)
            + f" AS c{i}"
            for i in range(n)
        ]

    def _copy(
        self, spec: TableSpec, select_list: list[str], where_sql: str = "", source: str = "__result"
    ) -> tuple[Path, Path, int]:
        gzip = self.hiveconf.get("hive.exec.compress.output", "false").lower() == "true"
        stage = self.files.staging_dir()
        out = stage / ("000000_0.gz" if gzip else "000000_0")
        query = f"SELECT {', '.join(select_list)} FROM {source} {where_sql}"
        row = self.con.execute(
            f"COPY ({query}) TO {serde.sql_str(str(out))} {serde.copy_options(spec, gzip=gzip)}"
        ).fetchone()
        return stage, out, int(row[0]) if row else 0

    def _write(
        self, where: Where, tr: Translated, spec: TableSpec, location: str, *, overwrite: bool
    ) -> tuple[int, Malformed]:
        rows = self._unmaterialised(tr)
        if rows is None:
            self._materialize(tr)
            malformed = self._flags(tr)
            source = "__result"
        else:
            malformed = self._flags(tr, rows)
            # (ORDER BY in a FROM subquery orders COPY's rows: insertion order is preserved)
            source = f"({tr.sql}) AS __result"
        stage, out, written = self._copy(
            spec, self._converted(tr, spec, self.con.sql(f"FROM {source}")), source=source
        )
        self.con.execute("DROP TABLE IF EXISTS __result")
        if overwrite:
            self.files.overwrite(location, stage)
        else:
            self.files.append(location, out)
        return written, malformed

    def _write_dynamic(
        self,
        where: Where,
        tr: Translated,
        spec: TableSpec,
        ordered: tuple[tuple[str, str], ...],
        static: list[tuple[str, str]],
        dynamic: list[str],
        overwrite: bool,
    ) -> int:
        names = self.con.sql("FROM __result").columns
        n = len(names) - tr.hidden
        dyn_cols = names[n - len(dynamic) : n]
        cols = ", ".join(serde.ident(c) for c in dyn_cols)
        combos = self.con.execute(
            f"SELECT DISTINCT {', '.join(f'CAST({serde.ident(c)} AS VARCHAR)' for c in dyn_cols)} "
            f"FROM __result ORDER BY ALL NULLS FIRST"
        ).fetchall()
        total = 0
        select_list = self._converted(tr, spec, self.con.sql("FROM __result"), skip_tail=len(dynamic))
        for combo in combos:
            given = dict(static)
            conds = []
            for col, name, value in zip(dyn_cols, dynamic, combo, strict=True):
                given[name] = "__HIVE_DEFAULT_PARTITION__" if value is None else str(value)
                conds.append(
                    f"CAST({serde.ident(col)} AS VARCHAR) IS NOT DISTINCT FROM "
                    f"{'NULL' if value is None else serde.sql_str(str(value))}"
                )
            values = tuple((k, given[k]) for k, _ in ordered)
            location = self._partition(spec, values)
            stage, out, rows = self._copy(spec, select_list, "WHERE " + " AND ".join(conds))
            if overwrite:
                self.files.overwrite(location, stage)
            else:
                self.files.append(location, out)
            total += rows
        del cols
        self.con.execute("DROP TABLE IF EXISTS __result")
        return total

    def _partition(self, spec: TableSpec, values: tuple[tuple[str, str], ...]) -> str:
        for existing in self.metastore.list_partitions(spec.database, spec.name):
            if existing.values == values:
                return existing.location
        location = partition_location(spec, values)
        self.metastore.add_partition(
            spec.database, spec.name, PartitionSpec(values=values, location=location)
        )
        return location
