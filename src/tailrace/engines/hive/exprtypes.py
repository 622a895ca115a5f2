"""What the translator can tell of an expression's Hive type before DuckDB sees it (a string
compared with or added to a number is read as a double in Hive), and the row order Hive's
windowing reducer gives a SELECT."""

from __future__ import annotations

import re

from sqlglot import exp

from tailrace.engines.hive import functions

_INT_TYPES = {"tinyint", "smallint", "int", "integer", "bigint"}
_INT_FUNCS = {"__hive_to_bigint", "__hive_to_int", "__hive_to_smallint", "__hive_to_tinyint"}


class ExprTypes:
    types: dict[str, str]

    def _stringy(self, node: exp.Expr) -> bool:
        if isinstance(node, exp.Column):
            typ = self.types.get(node.name.lower(), "unknown")
            return typ.startswith(("string", "varchar", "char"))
        if isinstance(node, exp.Literal):
            return node.is_string
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name == "try" and node.expressions:
                return self._stringy(node.expressions[0])
            return name in functions.STRING_FUNCS
        if isinstance(node, exp.Paren | exp.Try):
            return self._stringy(node.this)
        if isinstance(node, exp.Bracket):
            # An element of split() or a value of str_to_map() is a string.
            inner = node.this
            return isinstance(inner, exp.RegexpSplit | exp.StrToMap) or (
                isinstance(inner, exp.Anonymous) and inner.name.lower() in ("__hive_str_to_map", "str_to_map")
            )
        if isinstance(node, exp.Coalesce | exp.If | exp.Case):
            # Hive's common type of a string and a number is string.
            branches = [node.args.get(k) for k in ("this", "true", "false", "default")]
            branches += list(node.expressions) + [i.args.get("true") for i in node.args.get("ifs") or []]
            return any(self._stringy(b) for b in branches if isinstance(b, exp.Expr))
        return isinstance(
            node,
            exp.Substring
            | exp.RegexpReplace
            | exp.RegexpExtract
            | exp.JSONExtractScalar
            | exp.Lower
            | exp.Upper
            | exp.Trim
            | exp.DPipe
            | exp.Concat,
        )

    def _numeric(self, node: exp.Expr) -> bool:
        """A number-valued expression (a string compared with it is read as a double)."""
        if self._numeric_literal(node):
            return True
        if isinstance(node, exp.Column):
            typ = self.types.get(node.name.lower(), "unknown").split("(")[0]
            return typ in functions.NUMERIC_TYPES
        if isinstance(node, exp.Paren):
            return self._numeric(node.this)
        if isinstance(node, exp.Anonymous):
            return node.name.lower() in functions.NUMBER_FUNCS
        if isinstance(node, exp.Cast | exp.TryCast):
            return node.to.is_type(*exp.DataType.NUMERIC_TYPES)
        return isinstance(
            node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod | exp.Count | exp.Sum | exp.Avg
        )

    def _integral(self, node: exp.Expr) -> bool:
        """An expression of one of Hive's integer types."""
        if isinstance(node, exp.Neg | exp.Paren):
            return self._integral(node.this)
        if isinstance(node, exp.Literal):
            return not node.is_string and re.fullmatch(r"\d+", node.this) is not None
        if isinstance(node, exp.Column):
            return self.types.get(node.name.lower(), "unknown") in _INT_TYPES
        if isinstance(node, exp.Cast | exp.TryCast):
            return node.to.is_type(*exp.DataType.INTEGER_TYPES)
        return isinstance(node, exp.Anonymous) and node.name.lower() in _INT_FUNCS

    def _timestampy(self, node: exp.Expr) -> bool:
        if isinstance(node, exp.Paren):
            return self._timestampy(node.this)
        if isinstance(node, exp.Column):
            return self.types.get(node.name.lower(), "unknown").startswith("timestamp")
        if isinstance(node, exp.Cast | exp.TryCast):
            return node.to.is_type(exp.DataType.Type.TIMESTAMP)
        if isinstance(node, exp.Anonymous):
            return node.name.lower() in ("__hive_ts", "timezone")
        return isinstance(node, exp.CurrentTimestamp)

    @staticmethod
    def _numeric_literal(node: exp.Expr) -> bool:
        if isinstance(node, exp.Neg):
            node = node.this
        return isinstance(node, exp.Literal) and not node.is_string

    @staticmethod
    def _to_double(node: exp.Expr) -> exp.Expr:
        return exp.TryCast(this=node, to=exp.DataType.build("DOUBLE"))


def window_order(q: exp.Select) -> list[exp.Ordered]:
    """The order Hive's windowing gives a SELECT whose window functions share one PARTITION BY
    and ORDER BY (several specs chain reducers: left as they come)."""
    windows = [
        w for e in q.expressions for w in e.find_all(exp.Window) if w.find_ancestor(exp.Subquery) is None
    ]
    specs = {
        (tuple(p.sql() for p in w.args.get("partition_by") or []), (w.args.get("order") or exp.Order()).sql())
        for w in windows
    }
    if len(specs) != 1:
        return []
    w = windows[0]
    keys = [exp.Ordered(this=p.copy(), nulls_first=True) for p in w.args.get("partition_by") or []]
    for o in (w.args.get("order") or exp.Order()).expressions:
        desc = bool(o.args.get("desc"))
        keys.append(exp.Ordered(this=o.this.copy(), desc=desc, nulls_first=not desc))
    if not keys:
        return []
    # Ties keep the numbering the window gave them (row_number 1 before 2).
    for e in q.expressions:
        fn = e.unalias()
        if isinstance(fn, exp.Window) and isinstance(fn.this, exp.RowNumber):
            keys.append(exp.Ordered(this=fn.copy()))
    return keys
