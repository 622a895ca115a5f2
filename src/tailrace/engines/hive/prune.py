"""Partition pruning: which partitions a statement can possibly read.

Only filters that must hold for every row are used: `col = literal` and `col IN (literals)`
AND-ed directly under a WHERE, on a partition column. A table named several times in one
statement is pruned only by what every one of its references requires.
"""

from __future__ import annotations

from sqlglot import exp

Filters = dict[str, set[str]]


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _literal(node: exp.Expr) -> str | None:
    return node.this if isinstance(node, exp.Literal) else None


def partition_filters(query: exp.Expr) -> dict[str, Filters | None]:
    """table name (lower) -> {column: allowed values}; None when a reference has no filter."""
    found: dict[str, Filters | None] = {}
    for select in query.find_all(exp.Select):
        sources: dict[str, str] = {}
        frm = select.args.get("from_") or select.args.get("from")
        items = ([frm.this] if frm is not None else []) + [j.this for j in select.args.get("joins") or []]
        for item in items:
            if isinstance(item, exp.Table):
                sources[item.alias_or_name.lower()] = item.name.lower()
        if not sources:
            continue
        per_alias: dict[str, Filters] = {alias: {} for alias in sources}
        where = select.args.get("where")
        for cond in _conjuncts(where.this) if where is not None else []:
            col: exp.Expr | None = None
            values: list[str | None] = []
            if isinstance(cond, exp.EQ):
                col, other = (cond.this, cond.expression)
                if not isinstance(col, exp.Column):
                    col, other = other, col
                values = [_literal(other)]
            elif isinstance(cond, exp.In) and not cond.args.get("query"):
                col, values = cond.this, [_literal(e) for e in cond.expressions]
            if not isinstance(col, exp.Column) or not values or any(v is None for v in values):
                continue
            alias = col.table.lower() if col.table else (next(iter(sources)) if len(sources) == 1 else "")
            if alias in per_alias:
                per_alias[alias].setdefault(col.name.lower(), set()).update(
                    v for v in values if v is not None
                )
        for alias, table in sources.items():
            mine = per_alias[alias]
            if table not in found:
                found[table] = mine
            else:
                prev = found[table]
                found[table] = (
                    None
                    if prev is None
                    else {c: prev[c] | mine[c] for c in prev.keys() & mine.keys()} or None
                )
    return found


def keep(values: tuple[tuple[str, str], ...], filters: Filters | None, types: dict[str, str]) -> bool:
    """Whether a partition with these values can hold rows that pass the filters."""
    if not filters:
        return True
    for name, value in values:
        allowed = filters.get(name)
        if allowed is None:
            continue
        if types.get(name, "string").split("(")[0] in ("tinyint", "smallint", "int", "bigint"):
            try:
                if int(value) not in {int(a) for a in allowed}:
                    return False
            except ValueError:
                continue
        elif value not in allowed:
            return False
    return True
