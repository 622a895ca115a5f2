"""What the rest of a script reads of a table, guessed from the later statements' Hive text.

When a statement's FROM item is kept as a table for the statements after it (sources.py), the
guess decides what the table holds: only the rows this statement's WHERE passes when every later
read of the table has the same WHERE (the seed script's two statements share FROM and WHERE), and
only the columns some statement names. A wrong guess costs time, never rows: a later statement
the table cannot serve reads the FROM item itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from tailrace.engines.hive.dialect import TailraceHive
from tailrace.engines.hive.sources import Plan


def plan(query: exp.Expr, later: Sequence[str] | None) -> Plan:
    """The Plan for keeping the FROM item of `query` (a Hive SELECT reading one table), given
    the (substituted) text of every statement after it; None: not known."""
    table = _read_table(query)
    if later is None or table is None:
        return Plan()
    name = table.name.lower()
    cond = query.args.get("where")
    mine = _text(cond)
    names: set[str] = set()
    wheres: list[str | None] = []
    for text in later:
        if name not in text.lower():
            continue
        try:
            tree = sqlglot.parse_one(text, read=TailraceHive)
        except Exception:
            # A guess never fails a statement: one sqlglot cannot read fails when it runs.
            return Plan()
        reads = [t for t in tree.find_all(exp.Table) if t.name.lower() == name]
        for t in reads:
            select = t.find_ancestor(exp.Select)
            wheres.append(_text(select.args.get("where")) if select is not None else None)
        if reads:
            names |= {i.name.lower() for i in tree.find_all(exp.Identifier)}
    return Plan(filter=mine is not None and all(w == mine for w in wheres), names=frozenset(names))


def _read_table(query: exp.Expr) -> exp.Table | None:
    if not isinstance(query, exp.Select):
        return None
    frm = query.args.get("from_") or query.args.get("from")
    item = frm.this if isinstance(frm, exp.From) else None
    return item if isinstance(item, exp.Table) and not query.args.get("joins") else None


def _text(where: exp.Expr | None) -> str | None:
    return where.this.sql(dialect=TailraceHive) if isinstance(where, exp.Where) else None
