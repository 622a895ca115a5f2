"""Values of the expression language, the Scope protocol, and the service's text rendering.

Rendering rules (what `#{...}` puts into a field):
- DateTime: `YYYY-MM-DDTHH:MM:SS` in the DateTime's own zone. Every DateTime is UTC except the
  result of `inTimeZone`, which (as a Joda DateTime would) prints its local time. Naive values are UTC.
- Integer: decimal digits. Integers are Java longs: a result outside 64 bits is an error.
- Double: the DG shows `#{1.0 / 2}` as `.5` and `#{2 ^ 2}` as `4.0`. Java's Double.toString gives
  `0.5`, so the service used a decimal format with an optional integer part and at least one
  fraction digit. We print the shortest digits that round-trip (Java's and Python's rule), in
  plain notation (never `1.0E10`), with at least one fraction digit and no leading `0` before the
  point: `.5`, `4.0`, `-.25`, `1.0E20` -> `100000000000000000000.0`. NaN and infinities print as
  Java's `NaN`, `Infinity`, `-Infinity`.
- Boolean (only if a scope returns one): `true` / `false`.
- List: the items, comma-separated in brackets (`[1,2]`); `render` instead gives one value per item.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol, TypeAlias, TypeGuard, runtime_checkable

from tailrace.expressions.error import ExpressionError

Value: TypeAlias = "int | float | str | datetime | list[Value] | Scope"

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1


@runtime_checkable
class Scope(Protocol):
    """Names an expression can read: fields, runtime fields (`@id`), parameters (`*myPassword`).

    `lookup` raises KeyError for an unknown name. A referenced object is returned as a Scope, so
    `input.directoryPath` is `lookup('input').lookup('directoryPath')`. A scope that holds field
    text containing `#{...}` renders it before returning it (the evaluator does not).
    """

    def lookup(self, name: str) -> Value: ...


class MappingScope:
    """A Scope backed by a mapping, falling back to `parent` for names it does not hold."""

    def __init__(self, values: Mapping[str, Value], parent: Scope | None = None) -> None:
        self._values = values
        self._parent = parent

    def lookup(self, name: str) -> Value:
        if name in self._values:
            return self._values[name]
        if self._parent is not None:
            return self._parent.lookup(name)
        raise KeyError(name)

    def names(self) -> list[str]:
        """Every name this scope (and its parent, when it can tell) holds: for "did you mean"."""
        found = list(self._values)
        parent_names = getattr(self._parent, "names", None)
        if callable(parent_names):
            found += [n for n in parent_names() if n not in self._values]
        return found

    def __repr__(self) -> str:
        return f"MappingScope({dict(self._values)!r})"


def is_scope(value: object) -> TypeGuard[Scope]:
    return not isinstance(value, str | int | float | datetime | list) and isinstance(value, Scope)


def type_name(value: object) -> str:
    """The language's name for a value's type, for messages."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, datetime):
        return "DateTime"
    if isinstance(value, list):
        return "List"
    if value is None:
        return "nothing"
    if is_scope(value):
        return "object reference"
    return type(value).__name__


def describe(value: object) -> str:
    """Type and a short rendering: `Integer 5`, `String 'abc'`, `DateTime 2011-05-24T17:10:00`."""
    kind = type_name(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{kind} {shown!r}"
    if isinstance(value, int | float | datetime):
        return f"{kind} {to_text(value)}"
    return kind


def as_utc_aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def datetime_text(dt: datetime) -> str:
    dt = as_utc_aware(dt)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def double_text(x: float) -> str:
    """A double as the service printed it (see the module docstring)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    plain = format(Decimal(repr(x)), "f")
    if "." not in plain:
        plain += ".0"
    sign, digits = ("-", plain[1:]) if plain.startswith("-") else ("", plain)
    if digits.startswith("0."):
        digits = digits[1:]
    return sign + digits


def to_text(value: Value) -> str:
    """The service's rendering of a value (raises ExpressionError for values with no text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, list):
        return "[" + ",".join(to_text(v) for v in value) + "]"
    if value is None:
        raise ExpressionError("the value is empty (the field has no value)")
    if is_scope(value):
        raise ExpressionError(
            "a reference to an object has no text of its own; name one of its fields (e.g. input.directoryPath)"
        )
    raise ExpressionError(f"a value of type {type(value).__name__} cannot be written into a field")


def flatten(value: Value) -> Iterator[Value]:
    """The items of a (possibly nested) list, or the value itself."""
    if isinstance(value, list):
        for item in value:
            yield from flatten(item)
    else:
        yield value


_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?"
)


def parse_datetime_value(text: str) -> datetime | None:
    """A date-time literal as definitions write them (`2011-05-24T17:10:00`), UTC-aware; else None.

    A trailing `Z` or offset and fractional seconds are accepted; anything else (a date alone, a
    space instead of `T`, an impossible date) is not a date-time.
    """
    if not isinstance(text, str):
        return None
    m = _DATETIME.fullmatch(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        return None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if offset >= timedelta(hours=24):
            return None
        local = dt.replace(tzinfo=timezone(offset if m.group(9) == "+" else -offset))
        try:
            dt = local.astimezone(UTC)
        except OverflowError:
            return None
    return dt
