"""Output for the client commands, as the AWS CLI shapes it: `--query` (a JMESPath expression
applied to the response) then `--output json|text|table`.

text: a scalar on its own line; a list of scalars on one tab-separated line; an object prints
its scalar values on one tab-separated line, then its nested lists and objects, each line of
those prefixed with the key in upper case (as the AWS CLI does). table: a list of objects as
columns, an object as Field/Value rows, a scalar as itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tailrace.errors import UsageError

FORMATS = ("json", "text", "table")


def apply_query(expression: str | None, value: Any) -> Any:
    if not expression:
        return value
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(expression, value)
    except JMESPathError as exc:
        raise UsageError(f"--query {expression!r}: {exc}".replace("\n", " "))


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cell(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if _scalar(value):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def text_lines(value: Any, prefix: str = "") -> list[str]:
    head = [prefix] if prefix else []
    if _scalar(value):
        return ["\t".join([*head, _cell(value)])]
    if isinstance(value, Mapping):
        lines: list[str] = []
        scalars = [_cell(v) for v in value.values() if _scalar(v)]
        if scalars:
            lines.append("\t".join([*head, *scalars]))
        for key, v in value.items():
            if not _scalar(v):
                lines += text_lines(v, str(key).upper())
        return lines
    items = list(value)
    if all(_scalar(v) for v in items):
        return ["\t".join([*head, *(_cell(v) for v in items)])] if items else []
    out: list[str] = []
    for item in items:
        out += text_lines(item, prefix)
    return out


def table_text(value: Any) -> str:
    if _scalar(value):
        return _cell(value)
    if isinstance(value, Mapping):
        rows = [(str(k), _cell(v)) for k, v in value.items()]
        return _grid(rows, ("Field", "Value"))
    items = list(value)
    if items and all(isinstance(i, Mapping) for i in items):
        columns: list[str] = []
        for item in items:
            columns += [str(k) for k in item if str(k) not in columns]
        rows2 = [tuple(_cell(item.get(c, "")) for c in columns) for item in items]
        return _grid(rows2, columns)
    return _grid([(_cell(i),) for i in items], ("Value",))


def _grid(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    table = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(table[0], widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table[1:]]
    return "\n".join(lines)
