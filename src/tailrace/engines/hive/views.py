"""CREATE VIEW: a named query kept in the metastore and read in place of its name.

A view is stored as a table spec without files: its Hive text in the `tailrace.view` property,
its columns (found by running the query's plan once, as Hive checks a view at creation), and
`external` so that dropping it never deletes a directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from tailrace.engines.hive import ddl
from tailrace.engines.hive.dialect import TailraceHive
from tailrace.engines.hive.locate import Where
from tailrace.engines.hive.translate import ResolvedTable
from tailrace.engines.metastore import DEFAULT_DB, TableSpec
from tailrace.engines.result import StatementResult

if TYPE_CHECKING:
    from tailrace.engines.hive.engine import HiveEngine

VIEW_KEY = "tailrace.view"


def create(engine: HiveEngine, where: Where, tree: exp.Create) -> StatementResult:
    target = tree.this
    if isinstance(target, exp.Schema):
        raise where.error(
            "CREATE VIEW with a column list is not supported (alias the columns in the query)", target
        )
    if not isinstance(target, exp.Table) or tree.expression is None:
        raise where.error("CREATE VIEW needs a name and AS SELECT ...", tree)
    database = (target.db or engine.database).lower()
    res = StatementResult(number=0, kind="CREATE VIEW", line=0, column=0, table=target.name)
    existing = engine._lookup(database, target.name)
    replace = bool(tree.args.get("replace"))
    if existing is not None and not replace:
        if tree.args.get("exists"):
            res.message = f"{target.name} exists"
            return res
        raise where.error(f"Table {target.name} already exists", target)
    if existing is not None and VIEW_KEY not in existing.properties:
        raise where.error(f"{target.name} is a table, not a view", target)
    query = tree.expression
    # Only the query's columns are wanted: no tie-breaker (which could read the tables first).
    tr = engine._translate(where, query, stable=False)
    rel = engine.con.sql(tr.sql)
    n = len(rel.columns) - tr.hidden
    columns = [(rel.columns[i], ddl.duck_to_hive(str(rel.types[i]))) for i in range(n)]
    location = (
        f"{engine.warehouse}/{'' if database == DEFAULT_DB else database + '.db/'}{target.name.lower()}"
    )
    spec = TableSpec(
        name=target.name,
        database=database,
        columns=columns,
        location=location,
        external=True,
        properties={VIEW_KEY: query.sql(dialect=TailraceHive)},
    )
    engine.metastore.replace_table(spec)
    res.input_tables = tr.input_tables
    return res


def resolved(spec: TableSpec) -> ResolvedTable:
    query = sqlglot.parse_one(spec.properties[VIEW_KEY], read=TailraceHive)
    return ResolvedTable(view="", table=spec.qualified_name, columns=dict(spec.columns), query=query)
