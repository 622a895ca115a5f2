"""Where a statement went wrong: script line and column from sqlglot nodes, parse errors and
DuckDB's messages (which name columns and functions of the translated SQL, not positions)."""

from __future__ import annotations

import re

import duckdb
import sqlglot
from sqlglot import exp

from tailrace.engines.hive.script import SourceMap, Statement, Substituted
from tailrace.engines.result import HiveError
from tailrace.errors import did_you_mean


class Where:
    """Turns nodes and offsets of one statement into script line/column for errors."""

    def __init__(self, stmt: Statement, sub: Substituted, smap: SourceMap, source: str) -> None:
        self.stmt, self.sub, self.smap, self.source = stmt, sub, smap, source

    def position(self, offset: int | None) -> tuple[int, int]:
        if offset is None:
            return self.smap.position(self.stmt.offset)
        return self.smap.position(self.stmt.offset + self.sub.original_offset(offset))

    def node_offset(self, node: exp.Expr | None) -> int | None:
        while node is not None:
            target = node.this if isinstance(node.this, exp.Identifier) else node
            meta = getattr(target, "meta", None) or {}
            if "start" in meta:
                return int(meta["start"])
            node = next((c for c in node.iter_expressions()), None) if not meta else None
        return None

    def error(self, message: str, node: exp.Expr | None = None, offset: int | None = None) -> HiveError:
        if offset is None and node is not None:
            offset = self.node_offset(node)
        line, col = self.position(offset)
        return HiveError(message, source=self.source, statement=self.stmt.number, line=line, column=col)


# sqlglot's node classes in the words of Hive's grammar, for its "Required keyword" messages.
_OPERATORS = {
    "Mul": "*", "Div": "/", "IntDiv": "DIV", "Add": "+", "Sub": "-", "Mod": "%", "EQ": "=",
    "NEQ": "<>", "GT": ">", "LT": "<", "GTE": ">=", "LTE": "<=", "And": "AND", "Or": "OR",
    "Like": "LIKE", "RLike": "RLIKE", "DPipe": "||", "BitwiseAnd": "&", "BitwiseOr": "|",
    "BitwiseXor": "^", "Is": "IS", "NullSafeEQ": "<=>",
}  # fmt: skip
_CLAUSES = {
    "Where": "WHERE", "Having": "HAVING", "Group": "GROUP BY", "Order": "ORDER BY",
    "Limit": "LIMIT", "Select": "SELECT", "Join": "JOIN", "From": "FROM", "Cast": "CAST",
    "Case": "CASE", "If": "CASE WHEN", "Between": "BETWEEN", "In": "IN", "Not": "NOT",
    "Alias": "AS", "Lateral": "LATERAL VIEW", "Insert": "INSERT", "Create": "CREATE",
    "Distinct": "DISTINCT", "Window": "OVER", "Ordered": "ORDER BY",
}  # fmt: skip


def _hive_parse_message(desc: str, token: str | None) -> str:
    """sqlglot's parse error in the terms of Hive's own ParseException ("cannot recognize input
    near ...", "missing ..."), without the library's class names."""
    m = re.search(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>", desc)
    if m:
        part, cls = m.groups()
        if cls in _OPERATORS:
            side = "left" if part == "this" else "right"
            return f"'{_OPERATORS[cls]}' has no expression on its {side}"
        if cls in _CLAUSES:
            return f"an incomplete {_CLAUSES[cls]}"
        return f"an incomplete {cls.lower()} expression"
    m = re.match(r"Expecting (\S+)", desc)
    if m:
        return f"missing '{m.group(1)}'"
    if desc.startswith("Invalid expression / Unexpected token"):
        return "not expected here (a missing comma or keyword?)"
    # Any other message, without Python class reprs.
    return re.sub(r"<class '[\w.]*?(\w+)'>", lambda c: _CLAUSES.get(c.group(1), c.group(1)), desc)


def parse_error(where: Where, exc: sqlglot.errors.ParseError) -> HiveError:
    info = exc.errors[0] if exc.errors else {}
    line, col = info.get("line"), info.get("col")
    offset = None
    if line and col:
        lines = where.sub.text.split("\n")
        start = sum(len(x) + 1 for x in lines[: line - 1])
        offset = max(start + col - len(info.get("highlight") or " "), start)
    token = info.get("highlight")
    desc = _hive_parse_message(info.get("description") or str(exc), token)
    message = f"cannot recognize input near '{token}': {desc}" if token else f"syntax error: {desc}"
    return where.error(message, offset=offset)


# --- errors --------------------------------------------------------------------------


_MESSAGES = [
    (re.compile(r'does not have a column named "([^"]+)"'), "Invalid table alias or column reference '{0}'."),
    (re.compile(r'Ambiguous reference to column name "([^"]+)"'), "Ambiguous column reference '{0}'"),
    (re.compile(r'column "([^"]+)" must appear in the GROUP BY'), "Expression not in GROUP BY key '{0}'"),
    (
        re.compile(r"Set operations can only apply to expressions with the same number of result (columns)"),
        "Schema of both sides of UNION should match: they have different numbers of {0}",
    ),
]


def _column(tree: exp.Expr | None, name: str) -> exp.Expr | None:
    if tree is None:
        return None
    low = name.lower()
    columns = [c for c in tree.find_all(exp.Column) if c.name.lower() == low]
    return (
        next((c for c in columns if not c.table), None)
        or next(iter(columns), None)
        or next((c for c in tree.find_all(exp.Column) if (c.table or "").lower() == low), None)
    )


def duck_error(where: Where, exc: duckdb.Error) -> HiveError:
    """DuckDB's error as a Hive-style message at the position of the name it is about."""
    text = str(exc)
    first = text.split("\n", 1)[0]
    tree = None
    try:
        tree = sqlglot.parse_one(where.sub.text, read="hive")
    except sqlglot.errors.ParseError:
        pass
    known = sorted({c.name for c in tree.find_all(exp.Column)}) if tree is not None else []
    m = re.search(r'Referenced column "([^"]+)" (?:was )?not found', text) or re.search(
        r'Referenced table "([^"]+)" not found', text
    )
    if m:
        name = m.group(1)
        cands = (
            re.findall(r'"([^"]+)"', text.split("Candidate bindings:", 1)[-1]) if "Candidate" in text else []
        )
        pool = [c.split(".")[-1] for c in cands if not c.split(".")[-1].startswith("__")] or [
            k for k in known if k != name
        ]
        return where.error(
            f"Invalid table alias or column reference '{name}'.{did_you_mean(name, pool)}",
            _column(tree, name),
        )
    for pattern, template in _MESSAGES:
        m = pattern.search(text)
        if m:
            name = m.group(1)
            extra = did_you_mean(name, [k for k in known if k != name]) if template.endswith(".") else ""
            return where.error(template.format(name) + extra, _column(tree, name))
    m = re.search(r"(?:Scalar|Aggregate|Table) Function with name (\w+) does not exist", text)
    if m and tree is not None:
        name = m.group(1)
        node: exp.Expr | None = next(
            (
                f
                for f in tree.find_all(exp.Func)
                if f.sql_name().lower() == name.lower()
                or (isinstance(f, exp.Anonymous) and f.name.lower() == name.lower())
            ),
            None,
        )
        return where.error(f"Invalid function '{name}'", node)
    # Otherwise point at the first name the message quotes, when the statement has it.
    quoted = re.findall(r'"([^"]+)"', first)
    node = next(
        (n for q in quoted if not q.startswith("__") for n in [_column(tree, q)] if n is not None), None
    )
    message, fn = hive_terms(first)
    if node is None and fn and tree is not None:
        node = next(
            (
                f
                for f in tree.find_all(exp.Func)
                if f.sql_name().lower() == fn.lower() or f.name.lower() == fn.lower()
            ),
            None,
        )
    return where.error(message, node)


_TYPES = {
    "VARCHAR": "string",
    "STRING_LITERAL": "string",
    "INTEGER": "int",
    "INTEGER_LITERAL": "int",
    "INT32": "int",
    "INT64": "bigint",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BLOB": "binary",
}


def _hive_type(duck: str) -> str:
    d = duck.strip()
    if d.endswith("[]"):
        return f"array<{_hive_type(d[:-2])}>"
    if d.startswith("DECIMAL"):
        return d.lower()
    if d.startswith("MAP("):
        return "map" + d[3:].lower().replace("(", "<").replace(")", ">")
    if d.startswith("STRUCT("):
        return "struct"
    return _TYPES.get(d, d.lower())


def hive_terms(first: str) -> tuple[str, str]:
    """A DuckDB error line in Hive's words, without DuckDB's "X Error:" prefix; and the function
    it is about, if any."""
    text = re.sub(r"^\w[\w ]*? Error: ", "", first).strip()
    m = re.search(r"No function matches the given name and argument types '([^(']+)\((.*)\)'", text)
    if m:
        name = m.group(1).lstrip("_").removeprefix("hive_")
        types = ", ".join(_hive_type(x) for x in re.split(r",\s*(?![^()]*\))", m.group(2)) if x)
        return f"Wrong arguments to {name}: no form of {name} takes ({types})", m.group(1)
    m = re.search(r"Could not convert string '(.*)' to (\w+)", text)
    if m:
        return f"Cannot convert '{m.group(1)}' to {_hive_type(m.group(2))}", ""
    m = re.search(r"Cannot compare values of type (\S+) and (?:type )?(\S+)", text)
    if m:
        return f"Cannot compare {_hive_type(m.group(1))} with {_hive_type(m.group(2))}", ""
    m = re.search(r"Cannot mix values of type (\S+) and (\S+)", text)
    if m:
        return f"Cannot mix {_hive_type(m.group(1))} and {_hive_type(m.group(2))} values", ""
    m = re.search(r"Overflow in (addition|subtraction|multiplication) of (\w+) \((.*)\)", text)
    if m:
        kind = {"INT8": "tinyint", "INT16": "smallint", "INT32": "int", "INT64": "bigint"}.get(
            m.group(2), "integer"
        )
        return (
            f"{kind} overflow in {m.group(3)}: Hive wraps around, tailrace hive refuses "
            "(cast to bigint or double first)",
            "",
        )
    m = re.search(r"Insufficient padding in (LPAD|RPAD)", text)
    if m:
        return f"{m.group(1).lower()} with an empty pad string (Hive fails: / by zero)", m.group(1).lower()
    if "UNNEST requires a single list or array" in text or "UNNEST() can only be applied to lists" in text:
        return "explode() takes an array or a map as a parameter", "unnest"
    m = re.search(r'Could not choose a best candidate function for the function call "(\w+)\((.*)\)"', text)
    if m:
        name = m.group(1).lstrip("_").removeprefix("hive_")
        types = ", ".join(_hive_type(x) for x in re.split(r",\s*(?![^()]*\))", m.group(2)) if x)
        return f"Wrong arguments to {name}: no form of {name} takes ({types})", m.group(1)
    text = re.sub(r"\s*(You might need to add explicit type casts|Use TRY\(.*).*$", "", text)
    return text, ""
