"""Request checking and response shaping from botocore's own `datapipeline` service model.

The model (2012-10-29) is loaded from the installed botocore, never copied: input shapes give the
required members, types, enums, lengths and character patterns a request must meet; output
shapes decide which members a response carries and how timestamps are written (epoch seconds).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape

from tailrace.clock import parse_dp
from tailrace.runtime.errors import InvalidRequest

SERVICE = "datapipeline"
API_VERSION = "2012-10-29"
MAX_REPORTED = 10
"""How many validation problems one error message lists."""


@functools.cache
def service_model() -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model(SERVICE, api_version=API_VERSION)


@functools.cache
def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


@functools.cache
def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


@functools.cache
def _pattern(java_pattern: str) -> re.Pattern[str]:
    # The model's patterns are Java regexes; the one construct Python reads differently is a
    # supplementary-plane range written as surrogate pairs.
    py = java_pattern.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")
    return re.compile(py)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, value: Any, constraint: str) -> None:
        self.problems.append(f"value {_show(value)} at '{path}' failed to satisfy constraint: {constraint}")

    def check(self, shape: Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, value, path)
        if kind == "list":
            return self.list(shape, value, path)
        if kind == "map":
            return self.map(shape, value, path)
        if kind == "string":
            return self.string(shape, value, path)
        if kind == "boolean":
            if not isinstance(value, bool):
                self.fail(path, value, "member must be a boolean")
            return value
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, value, "member must be an integer")
            else:
                self.bounds(shape, value, value, path, "value")
            return value
        if kind == "timestamp":
            return self.timestamp(value, path)
        if kind in ("double", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(path, value, "member must be a number")
            return value
        raise AssertionError(f"shape type {kind} is not used by the {SERVICE} model")

    def bounds(self, shape: Shape, value: Any, size: int, path: str, what: str) -> None:
        low = shape.metadata.get("min")
        high = shape.metadata.get("max")
        if low is not None and size < low:
            self.fail(path, value, f"member must have {what} greater than or equal to {low}")
        if high is not None and size > high:
            self.fail(path, value, f"member must have {what} less than or equal to {high}")

    def structure(self, shape: Shape, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path or "(body)", value, "member must be an object")
            return {}
        out: dict[str, Any] = {}
        members = shape.members
        for name in shape.metadata.get("required", ()):
            if value.get(name) is None:
                self.problems.append(
                    f"value null at '{_join(path, name)}' failed to satisfy constraint: "
                    "member must not be null"
                )
        for name, member in members.items():
            raw = value.get(name)
            if raw is not None:  # JSON null is the same as absent, as in the service
                out[name] = self.check(member, raw, _join(path, name))
        return out

    def list(self, shape: Shape, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, value, "member must be a list")
            return []
        self.bounds(shape, value, len(value), path, "length")
        member = shape.member
        return [self.check(member, item, f"{path}[{i}]") for i, item in enumerate(value)]

    def map(self, shape: Shape, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, value, "member must be an object")
            return {}
        key_shape, value_shape = shape.key, shape.value
        return {
            self.check(key_shape, k, f"{path}.key"): self.check(value_shape, v, f"{path}[{k!r}]")
            for k, v in value.items()
        }

    def string(self, shape: Shape, value: Any, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, value, "member must be a string")
            return ""
        self.bounds(shape, value, len(value), path, "length")
        enum = shape.enum
        if enum and value not in enum:
            self.fail(path, value, f"member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            self.fail(path, value, "member must not contain control characters or unpaired surrogates")
        return value

    def timestamp(self, value: Any, path: str) -> datetime | None:
        # The JSON protocol sends epoch seconds; ISO 8601 text is accepted from hand-written clients.
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                pass
        elif isinstance(value, str):
            try:
                return parse_dp(value)
            except ValueError:
                pass
        self.fail(path, value, "member must be a timestamp (epoch seconds)")
        return None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_input(operation_name: str, body: Any) -> dict[str, Any]:
    """The request body checked against the operation's input shape, with timestamps parsed.

    Members the model does not know are dropped (the service ignored them too).
    :raises InvalidRequest: listing every violated constraint with its path.
    """
    shape = operation(operation_name).input_shape
    if shape is None:
        return {}
    checker = _Checker()
    out = checker.structure(shape, body, "")
    if checker.problems:
        n = len(checker.problems)
        listed = "; ".join(checker.problems[:MAX_REPORTED])
        more = f"; and {n - MAX_REPORTED} more" if n > MAX_REPORTED else ""
        raise InvalidRequest(f"{n} validation error{'s' if n > 1 else ''} detected: {listed}{more}")
    return out


def render_output(operation_name: str, result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The handler's result reduced to the operation's output shape.

    Only modelled members are written; None means absent; datetimes become epoch seconds.
    A missing required member is a server bug and raises AssertionError.
    """
    shape = operation(operation_name).output_shape
    if shape is None:
        return {}
    return _renderer(shape)(result or {})


Render = Callable[[Any], Any]
_RENDERERS: dict[int, Render] = {}


def _renderer(shape: Shape) -> Render:
    """A function writing values of this shape, built once per shape (responses can hold
    thousands of fields, so the model is not walked anew for each)."""
    key = id(shape)
    found = _RENDERERS.get(key)
    if found is None:
        found = _build(shape)
        _RENDERERS[key] = found
    return found


def _build(shape: Shape) -> Render:
    kind = shape.type_name
    if kind == "structure":
        members: list[tuple[str, Render]] = []
        required = tuple(shape.metadata.get("required", ()))
        name = shape.name
        texts = _texts(shape)
        flat = len(texts) == len(shape.members)
        need = frozenset(required)

        def structure(value: Any) -> dict[str, Any]:
            get: Callable[[str], Any]
            if value.__class__ is dict:
                if flat and _flat_ready([value], texts, need):
                    return value
                get = value.get
            elif isinstance(value, Mapping):
                get = value.get
            else:

                def attr(k: str) -> Any:
                    return getattr(value, k, None)

                get = attr

            out: dict[str, Any] = {}
            for member, render in members:
                item = get(member)
                if item is not None:
                    out[member] = item if item.__class__ is str and member in texts else render(item)
            for member in required:
                if member not in out:
                    raise AssertionError(
                        f"response member {name}.{member} is required by the model but missing"
                    )
            return out

        _RENDERERS[id(shape)] = structure  # before the members: shapes may refer to themselves
        members.extend((m, _renderer(s)) for m, s in shape.members.items())
        return structure
    if kind == "list":
        member: Shape = shape.member
        item = _renderer(member)
        if member.type_name == "structure" and len(_texts(member)) == len(member.members):
            texts, need = _texts(member), frozenset(member.metadata.get("required", ()))

            def flat_list(value: Any) -> list[Any]:
                if value.__class__ is list and _flat_ready(value, texts, need):
                    return value
                return [item(v) for v in value]

            return flat_list
        return lambda value: [item(v) for v in value]
    if kind == "map":
        val = _renderer(shape.value)
        return lambda value: {str(k): val(v) for k, v in value.items()}
    if kind == "timestamp":
        return _timestamp_out
    if kind == "boolean":
        return bool
    if kind in ("integer", "long"):
        return int
    if kind == "string":
        return _string_out
    return _identity


def _texts(shape: Shape) -> frozenset[str]:
    return frozenset(m for m, s in shape.members.items() if s.type_name == "string")


def _flat_ready(items: list[Any], texts: frozenset[str], need: frozenset[str]) -> bool:
    """Whether every item, for a structure whose members are all strings, already has the
    output's form: a dict of known members, the required ones present, every value a str.
    (DescribeObjects answers thousands of such fields per page; checking them in bulk costs a
    fraction of rebuilding each.)"""
    # Each test runs over the whole list in C (map, set union, chain).
    if not set(map(type, items)) <= _DICT or not set().union(*items) <= texts:
        return False
    if not all(all(map(dict.__contains__, items, repeat(k))) for k in need):
        return False
    return set(map(type, chain.from_iterable(map(dict.values, items)))) <= _STR


_DICT, _STR = frozenset({dict}), frozenset({str})


def _string_out(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _identity(value: Any) -> Any:
    return value


def _timestamp_out(value: Any) -> Any:
    if isinstance(value, datetime):
        stamp = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        return int(stamp) if stamp == int(stamp) else stamp
    return value
