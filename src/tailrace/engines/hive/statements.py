"""The statements HiveEngine runs through sqlglot: CREATE, DROP, SELECT and the INSERTs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from tailrace.engines.hive import ddl, serde, views
from tailrace.engines.hive.locate import Where
from tailrace.engines.hive.translate import Translated
from tailrace.engines.hive.udtf import hoist_joins
from tailrace.engines.hive.writing import ResultWriter
from tailrace.engines.metastore import TableSpec
from tailrace.engines.result import StatementResult
from tailrace.errors import ConflictError


def _from_of(select: exp.Select) -> exp.Expr | None:
    return select.args.get("from_") or select.args.get("from")


def _hive_names(query: exp.Expr, names: list[str]) -> list[str]:
    """Column names as Hive reports them: aliases, column names, `_cN` for other expressions."""
    if not isinstance(query, exp.Select) or any(
        isinstance(e, exp.Star) or e.is_star for e in query.expressions
    ):
        return names
    out: list[str] = []
    for i, e in enumerate(query.expressions[: len(names)]):
        if isinstance(e, exp.Alias):
            out.append(e.alias)
        elif isinstance(e, exp.Column):
            out.append(e.name)
        else:
            out.append(f"_c{i}")
    return out + names[len(out) :]


class Statements(ResultWriter):
    """Each statement kind, on the engine's tables (HiveEngine) and writer (ResultWriter)."""

    session: dict[tuple[str, str], TableSpec]
    database: str
    warehouse: str

    if TYPE_CHECKING:  # defined by HiveEngine (and overridden by SparkHiveEngine)

        def _translate(self, where: Where, query: exp.Expr, *, stable: bool = True) -> Translated: ...
        def _lookup(self, db: str | None, name: str) -> TableSpec | None: ...
        def _require(self, where: Where, table: exp.Table) -> TableSpec: ...

    def _create(self, where: Where, tree: exp.Create) -> StatementResult:
        made = ddl.create_table_spec(tree, database=self.database, warehouse=self.warehouse)
        like = ddl.like_table(tree)
        if like is not None:
            # CREATE TABLE t LIKE src: src's columns, partitions and row format; t's own place.
            src = self._require(where, like)
            made.spec = TableSpec(
                **{
                    **src.__dict__,
                    "name": made.spec.name,
                    "database": made.spec.database,
                    "location": made.spec.location,
                    "external": made.spec.external,
                }
            )
        spec = made.spec
        res = StatementResult(number=0, kind="CREATE TABLE", line=0, column=0, table=spec.name)
        existing = self._lookup(spec.database, spec.name)
        query = tree.expression
        if existing is not None:
            if not made.if_not_exists:
                raise where.error(f"Table {spec.name} already exists", tree.this)
            if existing.to_json() != spec.to_json() and existing.external and spec.external and query is None:
                # EMR clusters started with an empty metastore, so a daily script's own DDL always
                # applied; keep that behaviour for external tables (the data is not touched).
                self.metastore.replace_table(spec)
                res.message = f"definition of {spec.name} updated (LOCATION {spec.location})"
            else:
                res.message = f"{spec.name} exists"
            return res
        if query is not None:
            tr = self._translate(where, query)
            rel = self.con.sql(tr.sql)  # (bound for its columns, not run)
            types, names = [str(t) for t in rel.types], rel.columns
            n = len(names) - tr.hidden
            spec = TableSpec(
                **{
                    **spec.__dict__,
                    "columns": [(names[i], ddl.duck_to_hive(types[i])) for i in range(n)],
                    "external": made.spec.external,
                }
            )
            self.metastore.create_table(spec)
            res.rows_written, res.malformed = self._write(where, tr, spec, spec.location, overwrite=True)
            res.kind = "CREATE TABLE AS"
            res.input_tables = tr.input_tables
            return res
        try:
            self.metastore.create_table(spec)
        except ConflictError:
            if not made.if_not_exists:
                raise where.error(f"Table {spec.name} already exists", tree.this)
        return res

    def _drop(self, where: Where, tree: exp.Drop) -> StatementResult:
        tables = tree.args.get("tables") or [tree.this]
        if len(tables) != 1 or not isinstance(tables[0], exp.Table):
            raise where.error("DROP TABLE takes one table name", tree)
        table = tables[0]
        spec = self._lookup(table.db or None, table.name)
        res = StatementResult(number=0, kind="DROP TABLE", line=0, column=0, table=table.name)
        if spec is None:
            # Hive's default (hive.exec.drop.ignorenonexistent=true) drops a missing table quietly.
            strict = self.hiveconf.get("hive.exec.drop.ignorenonexistent", "true").lower() == "false"
            if strict and not tree.args.get("exists"):
                raise where.error(f"Table not found '{table.name}'", table)
            return res
        is_view = views.VIEW_KEY in spec.properties
        if is_view != ((tree.kind or "").upper() == "VIEW"):
            what = "a view: use DROP VIEW" if is_view else "a table: use DROP TABLE"
            raise where.error(f"{spec.name} is {what}", table)
        self.session.pop((spec.database, spec.name), None)
        self.metastore.drop_table(spec.database, spec.name)
        if not spec.external:
            self.files.delete_all(spec.location)
        return res

    def _truncate(self, where: Where, tree: exp.TruncateTable) -> StatementResult:
        """TRUNCATE TABLE t: a managed table's files go, its definition (and partitions) stay."""
        tables = tree.expressions
        if len(tables) != 1 or not isinstance(tables[0], exp.Table) or tree.args.get("partition"):
            raise where.error("TRUNCATE TABLE takes one table name (no PARTITION)", tree)
        table = tables[0]
        spec = self._lookup(table.db or None, table.name)
        if spec is None or views.VIEW_KEY in spec.properties:
            raise where.error(f"Table not found '{table.name}'", table)
        if spec.external:
            raise where.error(f"Cannot truncate non-managed table {spec.name}", table)
        self.session.pop((spec.database, spec.name), None)
        self.files.delete_all(spec.location)
        return StatementResult(number=0, kind="TRUNCATE TABLE", line=0, column=0, table=spec.name)

    def _select(self, where: Where, query: exp.Expr) -> StatementResult:
        tr = self._translate(where, query)
        self._materialize(tr)
        rel = self.con.sql("FROM __result")
        names = rel.columns
        n = len(names) - tr.hidden
        cols = ", ".join(serde.ident(c) for c in names[:n])
        rows = self.con.execute(f"SELECT {cols} FROM __result").fetchall()
        res = StatementResult(number=0, kind="SELECT", line=0, column=0)
        res.columns = _hive_names(query, list(names[:n]))
        # A FLOAT prints as Java's Float.toString (CAST(1.1 AS FLOAT) is 1.1, not the double's digits).
        floats = [str(t).upper() == "FLOAT" for t in rel.types[:n]]
        res.select_rows = [
            tuple(
                None if v is None else serde.java_float(v) if f else serde.hive_text(v)
                for v, f in zip(row, floats, strict=True)
            )
            for row in rows
        ]
        res.malformed = self._flags(tr)
        res.input_tables = tr.input_tables
        self.con.execute("DROP TABLE IF EXISTS __result")
        return res

    def _multi_insert(self, where: Where, tree: exp.MultitableInserts) -> StatementResult:
        """`FROM src INSERT ... SELECT ... INSERT ... SELECT ...`: each insert reads the source."""
        source = tree.args.get("source")
        if source is None:
            raise where.error("a multi-insert needs FROM <table>", tree)
        done = StatementResult(number=0, kind="INSERT (multi)", line=0, column=0)
        tables: list[str] = []
        for insert in tree.expressions:
            query = insert.expression
            if isinstance(query, exp.Select) and _from_of(query) is None:
                query.set("from_", exp.From(this=source.copy()))
                hoist_joins(query)
            part = self._insert(where, insert)
            tables.append(part.table or "")
            done.rows_written += part.rows_written
            done.malformed = part.malformed
            done.input_tables = part.input_tables
        done.table = ", ".join(tables)
        return done

    def _insert_directory(self, where: Where, tree: exp.Insert, target: exp.Directory) -> StatementResult:
        """INSERT OVERWRITE [LOCAL] DIRECTORY 'path' [ROW FORMAT DELIMITED ...] SELECT ..."""
        path = target.this.this if isinstance(target.this, exp.Literal) else target.this.sql()
        delim, null_format = "\x01", "\\N"
        row_format = target.args.get("row_format")
        if row_format is not None:
            if row_format.args.get("fields") is not None:
                delim = ddl.delimiter_byte(row_format.args["fields"].this)
            if row_format.args.get("null") is not None:
                null_format = row_format.args["null"].this
        tr = self._translate(where, tree.expression)
        rel = self.con.sql(tr.sql)  # (bound for its columns, not run)
        n = len(rel.columns) - tr.hidden
        spec = TableSpec(
            name="directory",
            columns=[(rel.columns[i], ddl.duck_to_hive(str(rel.types[i]))) for i in range(n)],
            location=path,
            field_delimiter=delim,
            null_format=null_format,
        )
        res = StatementResult(number=0, kind="INSERT OVERWRITE DIRECTORY", line=0, column=0, table=path)
        res.rows_written, res.malformed = self._write(where, tr, spec, path, overwrite=True)
        res.input_tables = tr.input_tables
        return res

    def _insert(self, where: Where, tree: exp.Insert) -> StatementResult:
        target = tree.this
        if isinstance(target, exp.Directory):
            return self._insert_directory(where, tree, target)
        if not isinstance(target, exp.Table):
            raise where.error("INSERT needs a target table (INSERT OVERWRITE TABLE name SELECT ...)", tree)
        spec = self._require(where, target)
        overwrite = bool(tree.args.get("overwrite"))
        res = StatementResult(
            number=0,
            kind="INSERT OVERWRITE" if overwrite else "INSERT INTO",
            line=0,
            column=0,
            table=target.name,
        )
        static: list[tuple[str, str]] = []
        dynamic: list[str] = []
        part = target.args.get("partition")
        if part is not None:
            if not spec.partitioned_by:
                raise where.error(f"table {spec.name} is not partitioned", part)
            for item in part.expressions:
                if isinstance(item, exp.EQ):
                    lit = item.expression
                    static.append(
                        (item.this.name.lower(), lit.this if isinstance(lit, exp.Literal) else lit.sql())
                    )
                else:
                    dynamic.append(item.name.lower())
        elif spec.partitioned_by:
            raise where.error(
                f"table {spec.name} is partitioned: name the partition with PARTITION (...)", target
            )
        tr = self._translate(where, tree.expression)
        expected = len(spec.columns) + len(dynamic)
        visible = len(self.con.sql(tr.sql).columns) - tr.hidden
        if visible != expected:
            raise where.error(
                f"Cannot insert into target table because column number/types are different "
                f"'{target.name}': table has {expected} columns, but query has {visible} columns.",
                target,
            )
        if dynamic:
            self._materialize(tr)
            ordered = ddl.ordered_values(spec, [*static, *((d, "") for d in dynamic)], node=part)
            res.malformed = self._flags(tr)
            res.rows_written = self._write_dynamic(where, tr, spec, ordered, static, dynamic, overwrite)
        else:
            if static:
                values = ddl.ordered_values(spec, static, node=part)
                location = self._partition(spec, values)
            else:
                location = spec.location
            res.rows_written, res.malformed = self._write(where, tr, spec, location, overwrite=overwrite)
        res.input_tables = tr.input_tables
        return res
