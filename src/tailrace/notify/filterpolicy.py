"""Subscription filter policies: the basic operators of SNS message filtering.

A policy is a JSON object; every key must match (AND) and each key's list of conditions matches
when any one does (OR). Conditions: a string or number (exact), `{"prefix": s}`, `{"suffix": s}`,
`{"equals-ignore-case": s}`, `{"anything-but": value | [values] | {"prefix": s}}`,
`{"numeric": [op, n, (op, n)]}` and `{"exists": bool}`. With scope MessageAttributes the keys are
attribute names (String, Number and String.Array values); with scope MessageBody the policy
mirrors the JSON body, nested objects included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tailrace.notify.errors import InvalidParameter

MAX_KEYS = 5
MAX_COMBINATIONS = 150
_NUMERIC_OPS = {"=", "<", "<=", ">", ">="}
_MISSING = object()


def _bad(message: str) -> InvalidParameter:
    return InvalidParameter(f"Filter policy: {message}")


def parse_policy(text: str) -> dict[str, Any]:
    """The checked policy. :raises InvalidParameter: saying which key or condition is wrong."""
    try:
        policy = json.loads(text)
    except ValueError as exc:
        raise _bad(f"not valid JSON ({exc})")
    if not isinstance(policy, dict):
        raise _bad("must be a JSON object")
    keys, combos = _check(policy, "")
    if keys > MAX_KEYS:
        raise _bad(f"has {keys} keys; at most {MAX_KEYS} are allowed")
    if combos > MAX_COMBINATIONS:
        raise _bad(f"has {combos} combinations of values; at most {MAX_COMBINATIONS} are allowed")
    return policy


def _check(node: Mapping[str, Any], path: str) -> tuple[int, int]:
    if not node:
        raise _bad(f"{path or 'the policy'} is an empty object")
    keys, combos = 0, 1
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            raise _bad("the $or operator is not supported")
        if isinstance(value, dict):
            k, c = _check(value, where)
            keys, combos = keys + k, combos * c
            continue
        if not isinstance(value, list) or not value:
            raise _bad(f"{where}: match conditions must be a non-empty JSON array")
        for cond in value:
            _check_condition(cond, where)
        keys, combos = keys + 1, combos * len(value)
    return keys, combos


def _check_condition(cond: Any, where: str) -> None:
    if cond is None or (isinstance(cond, str | int | float) and not isinstance(cond, bool)):
        return
    if not isinstance(cond, dict) or len(cond) != 1:
        raise _bad(f"{where}: {json.dumps(cond)[:80]} is not a value or a one-operator object")
    ((op, arg),) = cond.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise _bad(f"{where}: {op} takes a string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise _bad(f"{where}: exists takes true or false")
    elif op == "numeric":
        _numeric_bounds(arg, where)
    elif op == "anything-but":
        if isinstance(arg, dict):
            if list(arg) != ["prefix"] or not isinstance(arg["prefix"], str):
                raise _bad(f'{where}: anything-but takes a value, a list of values or {{"prefix": s}}')
        elif isinstance(arg, list):
            if not arg or not all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in arg):
                raise _bad(f"{where}: anything-but's list must hold strings or numbers")
        elif not isinstance(arg, str | int | float) or isinstance(arg, bool):
            raise _bad(f'{where}: anything-but takes a value, a list of values or {{"prefix": s}}')
    else:
        raise _bad(f"{where}: unrecognized match type {op!r}")


def _numeric_bounds(arg: Any, where: str) -> list[tuple[str, float]]:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise _bad(f"{where}: numeric takes [op, number] or [op, number, op, number]")
    out: list[tuple[str, float]] = []
    for i in range(0, len(arg), 2):
        op, n = arg[i], arg[i + 1]
        if op not in _NUMERIC_OPS or isinstance(n, bool) or not isinstance(n, int | float):
            raise _bad(
                f"{where}: numeric operator {op!r} with {n!r}; expected one of = < <= > >= and a number"
            )
        out.append((op, float(n)))
    if len(out) == 2 and (out[0][0] not in (">", ">=") or out[1][0] not in ("<", "<=")):
        raise _bad(f"{where}: a numeric range is a lower bound (> or >=) then an upper bound (< or <=)")
    return out


# --- matching --------------------------------------------------------------------------------------


def matches_attributes(policy: Mapping[str, Any], attributes: Mapping[str, Mapping[str, Any]]) -> bool:
    """Scope MessageAttributes: `attributes` as Publish received them (DataType, StringValue)."""
    for key, conditions in policy.items():
        attr = attributes.get(key)
        values: list[Any]
        values = [] if attr is None else _attribute_values(attr)
        if not _any_condition(conditions, values, present=attr is not None):
            return False
    return True


def _attribute_values(attr: Mapping[str, Any]) -> list[Any]:
    kind = str(attr.get("DataType", "String"))
    raw = attr.get("StringValue")
    if raw is None:
        return []  # Binary attributes are never matched
    if kind.startswith("Number"):
        try:
            return [float(raw)]
        except ValueError:
            return []
    if kind.startswith("String.Array"):
        try:
            items = json.loads(raw)
        except ValueError:
            return []
        return [i for i in items if not isinstance(i, dict | list)] if isinstance(items, list) else []
    return [raw]


def matches_body(policy: Mapping[str, Any], body: Any) -> bool:
    """Scope MessageBody: the message parsed as JSON (a message that is not JSON never matches)."""
    if not isinstance(body, dict):
        return False
    for key, conditions in policy.items():
        value = body.get(key, _MISSING)
        if isinstance(conditions, dict):
            if value is _MISSING or not matches_body(conditions, value):
                return False
            continue
        present = value is not _MISSING
        values = [] if not present else (value if isinstance(value, list) else [value])
        if not _any_condition(conditions, values, present=present):
            return False
    return True


def _any_condition(conditions: list[Any], values: list[Any], *, present: bool) -> bool:
    for cond in conditions:
        if isinstance(cond, dict) and "exists" in cond:
            if cond["exists"] == present:
                return True
            continue
        if any(_match(cond, v) for v in values):
            return True
    return False


def _match(cond: Any, value: Any) -> bool:
    if not isinstance(cond, dict):
        if isinstance(cond, int | float) and not isinstance(cond, bool):
            return _number(value) == float(cond)
        return isinstance(value, str) and value == cond
    ((op, arg),) = cond.items()
    if op == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == arg.lower()
    if op == "numeric":
        n = _number(value)
        return n is not None and all(_compare(n, o, b) for o, b in _numeric_bounds(arg, ""))
    if op == "anything-but":
        if isinstance(arg, dict):
            return isinstance(value, str) and not value.startswith(arg["prefix"])
        banned = arg if isinstance(arg, list) else [arg]
        return not any(_match(b, value) for b in banned)
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _compare(n: float, op: str, bound: float) -> bool:
    return {
        "=": n == bound,
        "<": n < bound,
        "<=": n <= bound,
        ">": n > bound,
        ">=": n >= bound,
    }[op]
