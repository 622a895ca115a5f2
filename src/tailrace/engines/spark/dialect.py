"""A Hive query (sqlglot AST, TailraceHive) as Spark SQL that keeps Hive's meaning.

Spark SQL reads HiveQL queries, but a few things mean something else there; each rewrite here
is one of those (docs/engines.md lists them, and what is left as a known difference):

- `1.5`, `1e7`: a DOUBLE in Hive, a DECIMAL in Spark -> `1.5D`.
- Hive function calls Spark lacks or answers otherwise: spark/functions.py (some of them as
  Python UDFs, spark/udfs.py).
- `sqrt(-1)`: NULL in Hive, NaN in Spark -> `nanvl(sqrt(x), NULL)`.
- `trunc(d, 'MM')`: Hive's date truncation; sqlglot reads it as DATE_TRUNC, which gives a
  timestamp in Spark -> Spark's own `trunc` (a DATE, printed yyyy-MM-dd).
- `FROM a JOIN b ... SELECT` and LATERAL VIEW without column names: as the DuckDB translator
  reads them (engines/hive/udtf.py).
"""

from __future__ import annotations

import re

from sqlglot import exp

from tailrace.engines.hive import udtf
from tailrace.engines.spark import functions

_TRUNC_UNITS = {"Q": "QUARTER", "MON": "MONTH"}


def prepare(q: exp.Expr) -> None:
    """Rewrites that need the tree before tables are replaced (joins, lateral names, sampling)."""
    for select in list(q.find_all(exp.Select)):
        udtf.hoist_joins(select)
        for lateral in select.args.get("laterals") or []:
            # Spark names explode's columns as Hive does (`col`, or `key`, `value` for a map,
            # which it knows from the column's type); posexplode's second is `val` in Hive.
            if isinstance(lateral.this, exp.Posexplode):
                udtf.default_names(lateral)
    for table in list(q.find_all(exp.Table)):
        sample = table.args.get("sample")
        if sample is not None:
            # The DuckDB engine's checks (ROWS a whole number, PERCENT only 100, BUCKET on a
            # column...); a bucket sample becomes a WHERE when the table is replaced.
            udtf.sample(exp.Table(this=exp.to_identifier("__check")), sample)


def bucket_sample(table: exp.Table, sample: exp.TableSample, alias: str) -> exp.Subquery:
    """TABLESAMPLE(BUCKET x OUT OF y ON col) of `table` as Hive buckets rows (and the DuckDB
    engine, udtf.sample): the rows whose hash of col, made non-negative, is x-1 modulo y; an int
    hashes as itself, a string as its String.hashCode, NULL as 0. Spark's own BUCKET sampling
    hashes with Murmur3, so its buckets hold other rows."""
    x, y = int(sample.args["bucket_numerator"].this), int(sample.args["bucket_denominator"].this)
    col = exp.column(sample.args["bucket_field"].name, quoted=True)
    # hash() is rewritten to Hive's hash by to_spark, as a call in the query is.
    cond = functions.template(f"(hash(_0) & 2147483647) % {y} = {x - 1}", col)
    return exp.Subquery(
        this=exp.select("*").from_(table).where(cond), alias=exp.TableAlias(this=exp.to_identifier(alias))
    )


def to_spark(q: exp.Expr) -> str:
    # Bottom-up, so a rewritten call's arguments are rewritten too (sqlglot's transform does not
    # descend into a replacement).
    for node in reversed(list(q.dfs())):
        new = _rewrite(node)
        if new is not node and node.parent is not None:
            node.replace(new)
    return q.sql(dialect="spark")


def _rewrite(node: exp.Expr) -> exp.Expr:
    if (
        isinstance(node, exp.Literal)
        and not node.is_string
        and re.search(r"[.eE]", node.this)
        and node.find_ancestor(exp.TableSample, exp.DataType) is None
    ):
        return exp.Literal.number(node.this + "D")
    if isinstance(node, exp.Sqrt):
        return exp.Anonymous(this="nanvl", expressions=[node.copy(), exp.Null()])
    if isinstance(node, exp.DateTrunc | exp.TimestampTrunc):
        unit = node.args.get("unit")
        name = unit.name if isinstance(unit, exp.Var | exp.Literal) else "MM"
        name = _TRUNC_UNITS.get(name.upper(), name.upper())
        return exp.Anonymous(this="trunc", expressions=[node.this.copy(), exp.Literal.string(name)])
    return functions.rewrite(node) or node


# Spark's error classes as the Hive CLI words them (the corpus checks these texts).
_MESSAGES = [
    (re.compile(r"\[USER_RAISED_EXCEPTION\] (.*?)(?:\s*SQLSTATE.*)?$"), lambda m: m.group(1)),
    (
        re.compile(r'\[DATATYPE_MISMATCH\.\w+\] Cannot resolve "(?:explode|explode_outer)\('),
        lambda m: "explode() takes an array or a map as a parameter",
    ),
    (
        re.compile(
            r"\[UNRESOLVED_COLUMN\.\w+\] A column, variable, or function parameter with name (`[^ ]+`)"
        ),
        lambda m: "Invalid table alias or column reference '{}'".format(
            m.group(1).split("`.`")[-1].strip("`")
        ),
    ),
    (
        re.compile(r'\[DATATYPE_MISMATCH\.\w+\] Cannot resolve "(\w+)\('),
        lambda m: f"Wrong arguments to {m.group(1).lower()}",
    ),
    (
        re.compile(r"\[WRONG_NUM_ARGS\.\w+\] The `(\w+)` requires (\d+) parameters"),
        lambda m: f"{m.group(1).lower()} takes {m.group(2)} arguments",
    ),
    (
        # A call in an expression, and a UDTF in a LATERAL VIEW (resolved as a table function).
        re.compile(
            r"\[UNRESOLVED_ROUTINE\] Cannot resolve routine `(\w+)`|\[ROUTINE_NOT_FOUND\] The routine (?:`\w+`\.)?`(\w+)`"
        ),
        lambda m: (
            f"Invalid function '{(m.group(1) or m.group(2)).lower()}' on the spark engine (Hive has it, Spark does not)"
        ),
    ),
]


def hive_message(text: str) -> str:
    """Spark's one-line error, with Hive's wording in front where there is one."""
    text = re.sub(r"\s*SQLSTATE: \w+", "", text)
    for pattern, word in _MESSAGES:
        m = pattern.search(text)
        if m:
            return f"{word(m)} (Spark: {text})"
    return f"Spark: {text}"
