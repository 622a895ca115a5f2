"""QueryObjects selectors: checking them, matching them on described fields, and turning the
ones that name indexed columns into store conditions (tailrace.state.Where).

A selector compares the object's field text (`stringValue`, or `refValue` for REF_EQ) with
its values: EQ and REF_EQ match any of the values, LE / GE / BETWEEN compare text, so dates
(YYYY-MM-DDTHH:MM:SS) compare in time order. A selector becomes a store condition only when
the condition selects exactly the same rows; the others are matched on the built fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tailrace.clock import parse_dp
from tailrace.runtime.errors import InvalidRequest
from tailrace.state import Where

OPERATORS = ("EQ", "REF_EQ", "LE", "GE", "BETWEEN")
MAX_SELECTORS = 10
ONE_SECOND = timedelta(seconds=1)
_FULL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

# Per sphere: which field maps to which column. Time columns hold sub-second times while the
# field shows whole seconds, which the bounds below allow for.
_STATUS = {"INSTANCE": "status", "ATTEMPT": "status"}
_REFS = {
    "INSTANCE": {"@componentParent": "component_id", "parent": "component_id"},
    "ATTEMPT": {"@instanceParent": "instance_id"},
}
_TIMES = {
    "INSTANCE": {"@scheduledStartTime": "scheduled_start", "@actualStartTime": "started_at"},
    "ATTEMPT": {"@actualStartTime": "started_at"},
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Selector:
    field: str
    op: str
    values: tuple[str, ...]


def parse_selectors(raw: Sequence[Mapping[str, Any]]) -> list[Selector]:
    """The request's selectors, checked. :raises InvalidRequest: naming the selector."""
    if len(raw) > MAX_SELECTORS:
        raise InvalidRequest(f"at most {MAX_SELECTORS} selectors; found {len(raw)}")
    out = []
    for i, sel in enumerate(raw):
        op = sel.get("operator") or {}
        kind = str(op.get("type", "EQ")).upper()
        if kind not in OPERATORS:
            raise InvalidRequest(
                f"selectors[{i}]: operator type must be EQ, REF_EQ, LE, GE or BETWEEN; found {kind!r}"
            )
        values = tuple(str(v) for v in op.get("values") or ())
        out.append(Selector(field=str(sel.get("fieldName") or ""), op=kind, values=values))
    return out


def matches(fields: Iterable[Mapping[str, str]], selectors: Sequence[Selector]) -> bool:
    """Whether the described object (its fields) meets every selector."""
    fields = list(fields)
    for sel in selectors:
        key = "refValue" if sel.op == "REF_EQ" else "stringValue"
        found = [f[key] for f in fields if f["key"] == sel.field and key in f]
        if not _holds(sel, found):
            return False
    return True


def _holds(sel: Selector, found: list[str]) -> bool:
    values = sel.values
    if sel.op in ("EQ", "REF_EQ"):
        return any(v in found for v in values)
    if sel.op == "LE":
        return bool(values) and any(v <= values[0] for v in found)
    if sel.op == "GE":
        return bool(values) and any(v >= values[0] for v in found)
    return len(values) >= 2 and any(values[0] <= v <= values[1] for v in found)


def to_store(sphere: str, selectors: Sequence[Selector]) -> tuple[list[Where], list[Selector]]:
    """(conditions for the store, selectors left to match on the fields)."""
    where: list[Where] = []
    rest: list[Selector] = []
    for sel in selectors:
        found = _condition(sphere, sel)
        if found is None:
            rest.append(sel)
        else:
            where.extend(found)
    return where, rest


def _condition(sphere: str, sel: Selector) -> list[Where] | None:
    if not sel.values:
        return None
    if sel.field == "@status" and sel.op == "EQ" and sphere in _STATUS:
        return [Where(column=_STATUS[sphere], op="in", value=frozenset(sel.values))]
    column = _REFS.get(sphere, {}).get(sel.field)
    if column is not None and sel.op == "REF_EQ":
        return [Where(column=column, op="in", value=frozenset(sel.values))]
    column = _TIMES.get(sphere, {}).get(sel.field)
    if column is None or not all(_FULL_TIME.fullmatch(v) for v in sel.values):
        return None
    try:
        times = [parse_dp(v) for v in sel.values]
        # The field shows a time cut to the second: text <= T holds for times before T + 1 s.
        if sel.op == "GE":
            return [Where(column=column, op="ge", value=times[0])]
        if sel.op == "LE":
            return [Where(column=column, op="lt", value=times[0] + ONE_SECOND)]
        if sel.op == "BETWEEN" and len(times) >= 2:
            return [
                Where(column=column, op="ge", value=times[0]),
                Where(column=column, op="lt", value=times[1] + ONE_SECOND),
            ]
        if sel.op == "EQ" and len(times) == 1:
            return [
                Where(column=column, op="ge", value=times[0]),
                Where(column=column, op="lt", value=times[0] + ONE_SECOND),
            ]
    except (ValueError, OverflowError):
        pass  # not a date the store can compare: match the text
    return None
