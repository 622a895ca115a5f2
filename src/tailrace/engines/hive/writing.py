"""Writing a statement's result (the `__result` temporary table) as Hive writes its files."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tailrace.engines.hive import serde
from tailrace.engines.hive.locate import Where
from tailrace.engines.hive.tables import TableFiles, partition_location
from tailrace.engines.hive.translate import FLAG_SHIFT, Translated
from tailrace.engines.metastore import Metastore, PartitionSpec, TableSpec
from tailrace.engines.result import Malformed


class ResultWriter:
    """The writing half of HiveEngine: `__result` to staged files, committed through TableFiles."""

    con: duckdb.DuckDBPyConnection
    metastore: Metastore
    files: TableFiles
    hiveconf: dict[str, str]

    def _materialize(self, tr: Translated) -> None:
        self.con.execute("DROP TABLE IF EXISTS __result")
        self.con.execute(f"CREATE TEMP TABLE __result AS {tr.sql}")

    def _flags(self, tr: Translated) -> Malformed:
        found = Malformed()
        for flag in tr.flags:
            row = self.con.execute(
                f"SELECT CAST(coalesce(sum({serde.ident(flag.name)}), 0) AS HUGEINT) FROM __result"
            ).fetchone()
            packed = int(row[0]) if row else 0
            found.short_lines += packed % FLAG_SHIFT
            found.bad_json += packed // FLAG_SHIFT
        return found

    def _converted(self, tr: Translated, spec: TableSpec, skip_tail: int = 0) -> list[str]:
        rel = self.con.sql("FROM __result")
        names, types = rel.columns, [str(t) for t in rel.types]
        n = len(names) - tr.hidden - skip_tail
        csv = spec.row_format == "csv_serde"
        return [
            serde.write_expr(serde.ident(names[i]), types[i], spec.columns[i][1], csv=csv, spec=spec)
            + f" AS c{i}"
            for i in range(n)
        ]

    def _copy(self, spec: TableSpec, select_list: list[str], where_sql: str = "") -> tuple[Path, Path, int]:
        gzip = self.hiveconf.get("hive.exec.compress.output", "false").lower() == "true"
        stage = self.files.staging_dir()
        out = stage / ("000000_0.gz" if gzip else "000000_0")
        query = f"SELECT {', '.join(select_list)} FROM __result {where_sql}"
        row = self.con.execute(
            f"COPY ({query}) TO {serde.sql_str(str(out))} {serde.copy_options(spec, gzip=gzip)}"
        ).fetchone()
        return stage, out, int(row[0]) if row else 0

    def _write(
        self, where: Where, tr: Translated, spec: TableSpec, location: str, *, overwrite: bool
    ) -> tuple[int, Malformed]:
        malformed = self._flags(tr)
        stage, out, rows = self._copy(spec, self._converted(tr, spec))
        self.con.execute("DROP TABLE IF EXISTS __result")
        if overwrite:
            self.files.overwrite(location, stage)
        else:
            self.files.append(location, out)
        return rows, malformed

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
        select_list = self._converted(tr, spec, skip_tail=len(dynamic))
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
