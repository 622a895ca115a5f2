"""Table reads shared by a script's statements, and a tie-breaker that keeps both cores busy.

The translator orders ties of a top-level ORDER BY by `row_number() OVER ()` (Hive's input
order). DuckDB numbers rows on one thread, so the JSON extraction and sort below it ran on one
core. When every row of the query comes from one table (filtered, or widened by json_tuple, but
never multiplied or merged) that number's order is the table's row order: the table is read
into a temporary table once (in parallel; insertion order kept) and ties are ordered by its
`rowid` instead. A later statement reading the same files uses the same temporary table, so the
input is decompressed and parsed once per script, not once per statement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp

from tailrace.engines.hive import serde

_TIE = "ROW_NUMBER() OVER () AS __rn"
_ROW = "__row"
_TABLE = "__m"
# Functions that return several rows per input row in a SELECT list.
_SET_RETURNING = {"unnest", "generate_series", "range", "generate_subscripts"}


@dataclass
class _Read:
    sql: str
    files: tuple[tuple[str, int, int], ...]
    """(path, size, mtime_ns) of every input file: a rewritten file is a different read."""
    table: bool = False
    """Materialised as a temporary table (else a view)."""


class SourceTables:
    """The temporary view (or table) per Hive table a script reads, named as the translator
    refers to it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._reads: dict[str, _Read] = {}

    def define(self, name: str, sql: str, files: Sequence[str], *, lenient: bool) -> None:
        """Make `name` read `sql`: the table read earlier when the same files are unchanged,
        otherwise a view. Lenient reads count dropped lines per statement, so they are never
        reused."""
        read = _Read(sql, _stats(files))
        old = self._reads.get(name)
        if old is not None and old.table and not lenient and (old.sql, old.files) == (read.sql, read.files):
            return
        self._drop(name)
        self.con.execute(f"CREATE TEMP VIEW {serde.ident(name)} AS {sql}")
        self._reads[name] = read

    def materialise(self, name: str) -> None:
        """Read the view's rows into the table `name__m` (same order: rowid is the position),
        and point the view at it."""
        read = self._reads[name]
        if read.table:
            return
        table = serde.ident(name + _TABLE)
        self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.con.execute(f"CREATE TEMP TABLE {table} AS {read.sql}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {serde.ident(name)} AS SELECT * FROM {table}")
        read.table = True

    def release(self) -> None:
        """Drop every table kept for later statements (the end of a script); views cost nothing."""
        for name in [n for n, r in self._reads.items() if r.table]:
            self._drop(name)

    def _drop(self, name: str) -> None:
        old = self._reads.pop(name, None)
        if old is not None:
            self.con.execute(f"DROP VIEW IF EXISTS {serde.ident(name)}")
            if old.table:
                self.con.execute(f"DROP TABLE IF EXISTS {serde.ident(name + _TABLE)}")

    def stable_by_rowid(self, sql: str) -> str | None:
        """`sql` with its `row_number() OVER ()` tie-breaker replaced by the row id of the one
        table every row comes from (materialised here); None when the query has another shape.
        The SQL text is edited in two places (not regenerated, which could change its meaning):
        the tie-breaker, and the table's one reference, which becomes `(SELECT *, rowid ...)`."""
        if sql.count(_TIE) != 1:
            return None
        found = _single_source(sqlglot.parse_one(sql, read="duckdb"), set(self._reads))
        if found is None:
            return None
        name, outer = found
        ref = serde.ident(name)
        if sql.count(ref) != 1:
            return None
        self.materialise(name)
        numbered = f"(SELECT *, rowid AS {_ROW} FROM {serde.ident(name + _TABLE)})"
        return sql.replace(_TIE, f"{serde.ident(outer)}.{_ROW} AS __rn").replace(ref, numbered)


def _stats(files: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for f in files:
        st = os.stat(f)
        out.append((f, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _from_item(select: exp.Select) -> exp.Expr | None:
    frm = select.args.get("from_") or select.args.get("from")
    return frm.this if isinstance(frm, exp.From) else None


def _one_to_one(select: exp.Select) -> bool:
    """Each output row is one input row (a WHERE may drop some): no joins, grouping, windows,
    limits or set-returning functions."""
    for key in (
        "joins",
        "laterals",
        "group",
        "having",
        "qualify",
        "distinct",
        "limit",
        "offset",
        "with",
        "windows",
    ):
        if select.args.get(key):
            return False
    for e in select.expressions:
        if e.alias == "__rn":
            continue  # the tie-breaker being replaced
        if e.find(exp.AggFunc, exp.Window, exp.Unnest, exp.Explode, exp.Posexplode):
            return False
        for fn in e.find_all(exp.Anonymous):
            if fn.name.lower() in _SET_RETURNING:
                return False
    return True


def _passes_all(select: exp.Select) -> bool:
    """The SELECT list has a `*` that passes the row id column up."""
    return any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star) for e in select.expressions
    )


def _single_source(tree: exp.Expr, tables: set[str]) -> tuple[str, str] | None:
    """(the table, the alias of the top FROM item) when every row of the query comes from that
    one table, each at most once, and every SELECT below the top passes its columns up by `*`."""
    if not isinstance(tree, exp.Select) or not _one_to_one(tree) or _passes_all(tree):
        return None  # (a top `*` would show the row id column)
    tie = next((e for e in tree.expressions if e.alias == "__rn"), None)
    if not (
        isinstance(tie, exp.Alias)
        and isinstance(tie.this, exp.Window)
        and isinstance(tie.this.this, exp.RowNumber)
    ):
        return None
    top = item = _from_item(tree)
    while isinstance(item, exp.Subquery) and isinstance(item.this, exp.Select):
        inner = item.this
        if not _one_to_one(inner) or not _passes_all(inner):
            return None
        item = _from_item(inner)
    if not isinstance(item, exp.Table) or item.db or item.args.get("sample") or item.name not in tables:
        return None
    assert top is not None
    return item.name, top.alias_or_name
