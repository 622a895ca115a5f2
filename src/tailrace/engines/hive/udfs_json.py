"""get_json_object as Hive's UDFJson evaluates a path (Hive 2.x and later, Jackson).

The path is split on '.'; each part is a key (letters, digits, `_`, `-`, `:` and spaces, the
rest of the part ignored) followed by any `[n]` / `[*]` subscripts. A key applied to a list
collects that key from each object in it (flattening lists); subscripts apply to every list
gathered so far, and a single result is unwrapped (`$.a[*].b` over one element gives the
element's b, not a list of one). Values print as Jackson writes them: doubles as Java's
Double.toString, objects and lists as compact JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tailrace.engines.hive.serde import java_double

_KEY = re.compile(r"^([a-zA-Z0-9_\-:\s]+)", re.S)
_INDEX = re.compile(r"\[([0-9]+|\*)\]")
_MISSING = object()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Jackson refuses NaN and Infinity by default


def _parse(text: str) -> Any:
    # Jackson's readValue stops after the first value (trailing text is ignored).
    value, _ = json.JSONDecoder(strict=False, parse_constant=_no_constant).raw_decode(text.lstrip())
    return value


def _with_key(value: Any, key: str) -> Any:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if not isinstance(item, dict):
                continue
            got = item.get(key)
            if isinstance(got, list):
                out.extend(got)
            elif got is not None:
                out.append(got)
        return out or None
    if isinstance(value, dict):
        return value.get(key)
    return None


def _with_index(value: Any, indexes: list[str]) -> Any:
    found = [value]
    for index in indexes:
        nxt: list[Any] = []
        for item in found:
            if not isinstance(item, list):
                continue
            if index == "*":
                nxt.extend(item)
            elif int(index) < len(item):
                nxt.append(item[int(index)])
        if not nxt:
            return None
        found = nxt
    return found if len(found) > 1 else found[0]


def _step(value: Any, part: str, *, skip_key: bool) -> Any:
    if not skip_key:
        m = _KEY.match(part)
        if m is None:
            return None
        value = _with_key(value, m.group(1))
    indexes = _INDEX.findall(part)
    return _with_index(value, indexes) if indexes else value


def dumps(value: Any) -> str:
    """Compact JSON as Jackson writes it (doubles as Java prints them)."""
    if isinstance(value, dict):
        return (
            "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(v) for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float):
        return java_double(value) or "null"
    return json.dumps(value, ensure_ascii=False)


def get_json_object(text: str, path: str) -> str | None:
    if not text or not path.startswith("$"):
        return None
    start, root_array = 1, False
    if len(path) > 1:
        if path[1] == "[":
            start, root_array = 0, True
        elif path[1] == ".":
            root_array = len(path) > 2 and path[2] == "["
        else:
            return None
    try:
        value: Any = _parse(text)
    except (ValueError, RecursionError):  # too deep for Python's reader: NULL, not a crash
        return None
    if path != "$" and not isinstance(value, list if root_array else dict):
        return None
    if not isinstance(value, list | dict):
        return None
    parts = path.split(".")
    for i in range(start, len(parts)):
        if value is None:
            return None
        value = _step(value, parts[i], skip_key=i == start and root_array)
    if value is None:
        return None
    if isinstance(value, dict | list):
        try:
            return dumps(value)
        except RecursionError:
            return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    return str(value)
