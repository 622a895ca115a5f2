"""Table reads shared by a script's statements, and a tie-breaker that keeps both cores busy.

The translator orders ties of a top-level ORDER BY by `row_number() OVER ()` (Hive's input
order). DuckDB numbers rows on one thread, so the JSON extraction and sort below it ran on one
core. When every row of the query comes from one table (filtered, or widened by json_tuple, but
never multiplied or merged) that number's order is the order of the rows DuckDB reads: the
query's FROM item is read into a temporary table once (in parallel, insertion order kept) and
ties are ordered by its `rowid` instead. A later statement of the script whose SQL holds the
same FROM item (the seed script's two statements share `fluentLog LATERAL VIEW json_tuple(...)`)
reads that table, so the input is decompressed, parsed and its JSON extracted once per script.

The SQL text is edited in place (never regenerated from a parse, which could change its
meaning): the tie-breaker, and the one FROM item, found by its tokens.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp

from tailrace.engines.hive import serde, sqltext

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


@dataclass
class _Kept:
    table: str
    base: str
    """The table view it reads (when that read changes, the kept rows go)."""
    dropped: frozenset[str] = frozenset()
    """Columns of the FROM item left out of the table (lower case): a statement that names one
    (or selects `*`) reads the FROM item itself."""
    where: str = ""
    """The WHERE condition the rows were kept by ('' for every row): a statement reads the table
    only where this condition filters the item alone, as its top query's WHERE."""


@dataclass(frozen=True)
class Plan:
    """What the rest of the script reads of the table under a kept FROM item (a guess from its
    Hive text, tailrace.engines.hive.foresight: a statement that reads more reads the item
    itself, which is slower but gives the same rows)."""

    filter: bool = False
    """Every later read of the table has this statement's WHERE: keep only the rows it passes."""
    names: frozenset[str] | None = None
    """Every name (lower case) the later statements that read the table use; None: unknown."""


class SourceTables:
    """The temporary view per Hive table a script reads (named as the translator refers to
    it), and the FROM items kept as tables for the script's later statements."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._reads: dict[str, _Read] = {}
        self._kept: dict[tuple[str, str], _Kept] = {}
        """(SQL text of a FROM item, the WHERE its rows passed) -> the table holding them."""
        self._n = 0
        self._scan = ""

    def define(self, name: str, sql: str, files: Sequence[str], *, lenient: bool) -> None:
        """Make the view `name` read `sql`. When the same files were read before (and are
        unchanged) the view and the rows kept from it stay. Lenient reads count the lines they
        drop per statement, so they are never reused."""
        read = _Read(sql, _stats(files))
        old = self._reads.get(name)
        if old is not None and not lenient and (old.sql, old.files) == (read.sql, read.files):
            return
        self._drop(name)
        self.con.execute(f"CREATE TEMP VIEW {serde.ident(name)} AS {sql}")
        self._reads[name] = read

    def rewrite(self, sql: str, *, stable: bool, plan: Callable[[], Plan] = Plan) -> str:
        """`sql` reading the kept tables in place of the FROM items they hold; with `stable`,
        its `row_number() OVER ()` tie-breaker replaced by a row id where the query allows.
        `plan` tells what later statements read, should the FROM item be kept."""
        # Filtered tables first: they hold fewer rows.
        for (text, cond), kept in sorted(self._kept.items(), key=lambda kv: not kv[0][1]):
            if text not in sql or (cond and not _filtered_alike(sql, text, cond)):
                continue
            replaced = sql.replace(text, serde.ident(kept.table))
            if not (kept.dropped and _names_any(replaced, kept.dropped)):
                sql = replaced
        if not stable or sql.count(_TIE) != 1:
            return sql
        kept_tables = {k.table: k for k in self._kept.values()}
        tree = _parsed(sql)
        found = _single_source(tree, set(self._reads) | set(kept_tables))
        if found is None:
            return sql
        item, base, outer = found
        if isinstance(item, exp.Table) and item.name in kept_tables:
            text, table = serde.ident(item.name), item.name
        elif isinstance(item, exp.Table):
            text, table = serde.ident(item.name), base + _TABLE
            if not self._materialise(base):
                return sql
        else:
            top = sqltext.top_clauses(sql)
            span = top.from_item
            if span is None or any(serde.ident(n) in span for n in self._reads if n != base):
                return sql  # (kept rows go when their one table is read anew)
            wanted = plan()
            cond = top.where if wanted.filter and top.where and _repeatable(tree) else ""
            text, table = span, self._keep(span, base, tree, item, cond=cond, later=wanted.names)
            if not table:
                return sql
        if sql.count(text) != 1:
            return sql
        numbered = f"(SELECT *, rowid AS {_ROW} FROM {serde.ident(table)})"
        self._scan = sql.replace(_TIE, f"{serde.ident(outer)}.{_ROW} AS __rn").replace(text, numbered)
        return self._scan

    def scans_kept(self, sql: str) -> bool:
        """Whether `sql` is the last query rewrite() numbered by a row id: a scan of one table in
        memory, one row per row (filtered), cheap to run a second time."""
        return sql == self._scan

    def release(self) -> None:
        """Drop every table kept for later statements (the end of a script); views cost nothing."""
        for key in list(self._kept):
            self.con.execute(f"DROP TABLE IF EXISTS {serde.ident(self._kept.pop(key).table)}")
        for name, read in self._reads.items():
            if read.table:
                self.con.execute(f"DROP TABLE IF EXISTS {serde.ident(name + _TABLE)}")
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {serde.ident(name)} AS {read.sql}")
                read.table = False

    def _materialise(self, name: str) -> bool:
        """Read the view's rows into the table `name__m` (rowid = position) and point the view
        at it; False (nothing changed) when DuckDB cannot make the table."""
        read = self._reads[name]
        if read.table:
            return True
        table = serde.ident(name + _TABLE)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {read.sql}")
        except duckdb.Error:
            return False  # the statement itself will meet (and report) the same error
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {serde.ident(name)} AS SELECT * FROM {table}")
        read.table = True
        return True

    def _keep(
        self,
        text: str,
        base: str,
        tree: exp.Expr,
        item: exp.Expr,
        *,
        cond: str = "",
        later: frozenset[str] | None = None,
    ) -> str:
        """A table of the rows of the FROM item `text` (a parenthesised subquery, `item` in the
        parsed query `tree`), in order, that pass `cond` (the query's WHERE, when every later
        read has it too), without the columns only the item itself reads (the raw JSON a
        json_tuple parses: the largest column) nor those no statement reads (`later`: the names
        later statements use)."""
        self._n += 1
        table = f"__kept_{self._n}"
        alias = serde.ident(item.alias_or_name or "__k")
        try:
            columns = self.con.sql(f"SELECT * FROM {text} AS {alias}").columns
            # What the item reads, and what the query reads outside it (the item pruned from the
            # walk, as if it were the kept table: one parse of the query for both).
            inner = _names(item.walk())[0]
            outer, star = _names(tree.walk(prune=lambda node: node is item))
            dropped = frozenset(
                c.lower()
                for c in columns
                if c.lower() not in outer
                and (
                    c.lower() in inner
                    # (engine columns, `__` flags, are named by translations, not by Hive text)
                    or (later is not None and c.lower() not in later and not c.startswith("__"))
                )
            )
            if star or len(dropped) == len(columns) or len({c.lower() for c in columns}) != len(columns):
                dropped = frozenset()
            exclude = f" EXCLUDE ({', '.join(serde.ident(c) for c in sorted(dropped))})" if dropped else ""
            where = f" WHERE {cond}" if cond else ""
            self.con.execute(
                f"CREATE TEMP TABLE {serde.ident(table)} AS SELECT *{exclude} FROM {text} AS {alias}{where}"
            )
        except duckdb.Error:
            return ""  # e.g. two columns of one name: the statement runs as translated
        self._kept[(text, cond)] = _Kept(table, base, dropped, cond)
        return table

    def _drop(self, name: str) -> None:
        for key in [t for t, k in self._kept.items() if k.base == name]:
            self.con.execute(f"DROP TABLE IF EXISTS {serde.ident(self._kept.pop(key).table)}")
        old = self._reads.pop(name, None)
        if old is not None:
            self.con.execute(f"DROP VIEW IF EXISTS {serde.ident(name)}")
            if old.table:
                self.con.execute(f"DROP TABLE IF EXISTS {serde.ident(name + _TABLE)}")


def _stats(files: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for f in files:
        st = os.stat(f)
        out.append((f, st.st_size, st.st_mtime_ns))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _parsed(sql: str) -> exp.Expr:
    """`sql` parsed as DuckDB SQL, once: rewrite parses the query a kept table was put in to see
    what it reads, then again to find its FROM item. The trees are shared: never modified.
    :raises sqlglot.errors.ParseError:"""
    return sqlglot.parse_one(sql, read="duckdb")


def _names(nodes: Iterable[exp.Expr]) -> tuple[set[str], bool]:
    """The names (lower case) of the columns among `nodes`, whatever table they name, and
    whether one is a `*` (COUNT(*) aside)."""
    names: set[str] = set()
    star = False
    for node in nodes:
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            star = True
        elif isinstance(node, exp.Column):
            star = star or node.is_star
            names.add(node.name.lower())
    return names, star


def _names_any(sql: str, names: frozenset[str]) -> bool:
    """Whether `sql` may read one of `names` (True when it does not parse)."""
    try:
        found, star = _names(_parsed(sql).walk())
    except sqlglot.errors.ParseError:
        return True
    return star or not found.isdisjoint(names)


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


def _single_source(tree: exp.Expr, tables: set[str]) -> tuple[exp.Expr, str, str] | None:
    """(the top FROM item, the table under it, the item's alias) when every row of the query
    comes from that one table, each at most once."""
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
        if not _one_to_one(item.this):
            return None
        item = _from_item(item.this)
    if not isinstance(item, exp.Table) or item.db or item.args.get("sample") or item.name not in tables:
        return None
    assert top is not None
    return top, item.name, top.alias_or_name


# Functions whose value differs between calls: a condition holding them cannot be applied twice.
_VOLATILE = {"random", "uuid", "gen_random_uuid", "nextval", "currval", "setseed", "now"}


def _repeatable(tree: exp.Expr) -> bool:
    """Whether the query's WHERE gives each row the same answer however often it runs: no
    subquery (it could read a table a later statement rewrote) and no volatile function."""
    cond = tree.args.get("where")
    if cond is None:
        return False
    for node in cond.walk():
        if isinstance(node, (exp.Subquery, exp.Select, exp.Exists, exp.Rand, exp.Uuid)):
            return False
        if isinstance(node, (exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime)):
            return False
        if isinstance(node, exp.Func) and _fname(node) in _VOLATILE:
            return False
    return True


def _fname(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _filtered_alike(sql: str, text: str, cond: str) -> bool:
    """Whether `sql` reads the FROM item `text` once, alone, as its top query's FROM, under the
    WHERE `cond`: then rows kept by `cond` are the rows it reads."""
    top = sqltext.top_clauses(sql)
    return top.from_item == text and top.alone and top.where == cond and sql.count(text) == 1
