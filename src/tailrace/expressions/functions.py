"""The Data Pipeline function library, with Joda-Time date arithmetic.

Every DateTime carries a zone (UTC unless `inTimeZone` changed it); field getters, `midnight`,
`firstOfMonth`, `sunday` and day/week/month/year arithmetic work on its local date and time, as
Joda does. Hours and minutes are exact durations. Months and years clamp the day to the end of
the month (`plusMonths(2011-01-31, 1)` is 2011-02-28). `sunday` is the Sunday on or before the
date; `midnight` is the start of the same day; both, like `firstOfMonth`, keep what is not reset.

Arguments are coerced as definitions need: a DateTime may be given as a date-time literal string
(`'2011-05-24T17:10:00'`), an int as a string of digits (parameter values are strings).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from zoneinfo import ZoneInfo

from tailrace.expressions.error import ExpressionError
from tailrace.expressions.jodaformat import PatternError, format_datetime
from tailrace.expressions.values import Value, as_utc_aware, describe, parse_datetime_value

DATETIME, INT, STRING = "DateTime", "int", "String"
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,19}")


class ArgumentError(ExpressionError):
    """An argument of the wrong type; `index` says which (the evaluator adds its column)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One function: its parameters (name, type), return type, a one-line summary and the code."""

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str
    summary: str
    impl: Callable[..., Value]

    @property
    def arity(self) -> int:
        return len(self.params)

    @property
    def arg_types(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.params)

    @property
    def signature(self) -> str:
        return f"{self.returns} {self.name}({', '.join(f'{t} {n}' for n, t in self.params)})"

    def apply(self, args: Sequence[Value]) -> Value:
        """Coerce the arguments to the parameter types and call; errors name the function."""
        coerced = [_coerce(self, i, a) for i, a in enumerate(args)]
        try:
            return self.impl(*coerced)
        except PatternError as exc:
            raise ArgumentError(f"{self.name}(): invalid Joda-Time pattern: {exc}", 1) from None
        except (ValueError, OverflowError, ArithmeticError) as exc:
            raise ExpressionError(f"{self.name}(): {_range_message(exc)}") from None


def _range_message(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, OverflowError) or "out of range" in text:
        return "the result is outside the supported date range (years 1 to 9999)"
    return text


def _coerce(spec: FunctionSpec, index: int, value: Value) -> Value:
    name, kind = spec.params[index]
    if kind == DATETIME:
        if isinstance(value, datetime):
            return as_utc_aware(value)
        if isinstance(value, str):
            parsed = parse_datetime_value(value)
            if parsed is not None:
                return parsed
    elif kind == INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(value.strip())
    elif isinstance(value, str):
        return value
    expected = {DATETIME: "a DateTime", INT: "an Integer", STRING: "a String"}[kind]
    raise ArgumentError(
        f"{spec.name}() expects {expected} as argument {index + 1} ({name}); found {describe(value)}. "
        f"Signature: {spec.signature}",
        index,
    )


# ---------------------------------------------------------------- date arithmetic


def _at_local(dt: datetime, naive: datetime) -> datetime:
    """`naive` (a wall time in dt's zone) as an aware value; wall times in a DST gap move forward."""
    tz = dt.tzinfo or UTC
    aware = naive.replace(tzinfo=tz)
    if isinstance(tz, timezone):
        return aware
    return aware.astimezone(UTC).astimezone(tz)


def _wall(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None)


def plus_months(dt: datetime, months: int) -> datetime:
    total = dt.year * 12 + dt.month - 1 + months
    year, month0 = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
    return _at_local(dt, _wall(dt).replace(year=year, month=month0 + 1, day=day))


def plus_days(dt: datetime, days: int) -> datetime:
    return _at_local(dt, _wall(dt) + timedelta(days=days))


def plus_exact(dt: datetime, delta: timedelta) -> datetime:
    return (dt.astimezone(UTC) + delta).astimezone(dt.tzinfo)


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"Value {value} for {field} must be in the range [{low},{high}]")


def make_datetime(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    _check_range("year", year, 1, 9999)
    _check_range("monthOfYear", month, 1, 12)
    _check_range("dayOfMonth", day, 1, calendar.monthrange(year, month)[1])
    _check_range("hourOfDay", hour, 0, 23)
    _check_range("minuteOfHour", minute, 0, 59)
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


_OFFSET = re.compile(r"([+-])([0-9]{1,2})(?::?([0-9]{2}))?")


def resolve_zone(zone_id: str) -> tzinfo:
    """A Joda zone id: `UTC`, a tz database id (`America/Los_Angeles`) or an offset (`-08:00`)."""
    text = zone_id.strip()
    if text == "UTC":
        return UTC
    m = _OFFSET.fullmatch(text)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"The datetime zone id '{zone_id}' is not recognised")
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(-offset if m.group(1) == "-" else offset) if offset else UTC
    try:
        return ZoneInfo(text)
    except Exception:  # zoneinfo raises several types (not found, bad key, bad path)
        raise ValueError(f"The datetime zone id '{zone_id}' is not recognised") from None


_PERIOD_PART = re.compile(r"\s*([0-9]+)\s*(minute|hour|day|week|month|year)s?\s*,?", re.IGNORECASE)


def _parse_period(text: str) -> dict[str, int]:
    parts: dict[str, int] = {}
    pos = 0
    for m in _PERIOD_PART.finditer(text):
        if m.start() != pos:
            break
        parts[m.group(2).lower()] = parts.get(m.group(2).lower(), 0) + int(m.group(1))
        pos = m.end()
    if not parts or pos != len(text):
        raise ValueError(f"expected a period like '1 day' or '15 minutes'; found {text!r}")
    return parts


def plus_period(dt: datetime, period: str, sign: int = 1) -> datetime:
    p = _parse_period(period)
    dt = plus_months(dt, sign * (12 * p.get("year", 0) + p.get("month", 0)))
    dt = plus_days(dt, sign * (7 * p.get("week", 0) + p.get("day", 0)))
    return plus_exact(dt, sign * timedelta(hours=p.get("hour", 0), minutes=p.get("minute", 0)))


# ---------------------------------------------------------------- the table

_DT = (("myDateTime", DATETIME),)
_SPECS: list[FunctionSpec] = [
    FunctionSpec("day", _DT, INT, "the day of the month", lambda d: d.day),
    FunctionSpec("dayOfYear", _DT, INT, "the day of the year", lambda d: d.timetuple().tm_yday),
    FunctionSpec("hour", _DT, INT, "the hour of the day (0-23)", lambda d: d.hour),
    FunctionSpec("minute", _DT, INT, "the minute of the hour", lambda d: d.minute),
    FunctionSpec("month", _DT, INT, "the month of the year (1-12)", lambda d: d.month),
    FunctionSpec("year", _DT, INT, "the year", lambda d: d.year),
    FunctionSpec(
        "firstOfMonth",
        _DT,
        DATETIME,
        "the first day of the month, same time of day",
        lambda d: _at_local(d, _wall(d).replace(day=1)),
    ),
    FunctionSpec(
        "midnight",
        _DT,
        DATETIME,
        "the start (00:00) of the same day",
        lambda d: _at_local(d, _wall(d).replace(hour=0, minute=0, second=0, microsecond=0)),
    ),
    FunctionSpec(
        "sunday",
        _DT,
        DATETIME,
        "the Sunday on or before the date, same time of day",
        lambda d: plus_days(d, -(d.isoweekday() % 7)),
    ),
    FunctionSpec("yesterday", _DT, DATETIME, "the day before, same time of day", lambda d: plus_days(d, -1)),
    FunctionSpec(
        "format",
        (("myDateTime", DATETIME), ("format", STRING)),
        STRING,
        "the DateTime printed with a Joda-Time pattern, e.g. 'YYYY-MM-dd HH:mm:ss'",
        format_datetime,
    ),
    FunctionSpec(
        "makeDate",
        (("year", INT), ("month", INT), ("day", INT)),
        DATETIME,
        "midnight UTC of the given date",
        make_datetime,
    ),
    FunctionSpec(
        "makeDateTime",
        (("year", INT), ("month", INT), ("day", INT), ("hour", INT), ("minute", INT)),
        DATETIME,
        "the given date and time, UTC",
        make_datetime,
    ),
    FunctionSpec(
        "inTimeZone",
        (("myDateTime", DATETIME), ("zone", STRING)),
        DATETIME,
        "the same instant in another zone (tz database id), so format() prints local time",
        lambda d, z: d.astimezone(resolve_zone(z)),
    ),
    FunctionSpec(
        "plusPeriod",
        (("myDateTime", DATETIME), ("period", STRING)),
        DATETIME,
        "the DateTime plus a period such as '1 day' (seen once in the Developer Guide)",
        lambda d, p: plus_period(d, p, 1),
    ),
    FunctionSpec(
        "minusPeriod",
        (("myDateTime", DATETIME), ("period", STRING)),
        DATETIME,
        "the DateTime minus a period such as '1 day'",
        lambda d, p: plus_period(d, p, -1),
    ),
]


def _shift(unit: str, sign: int) -> Callable[[datetime, int], datetime]:
    def apply(d: datetime, n: int) -> datetime:
        n *= sign
        if unit == "Minutes":
            return plus_exact(d, timedelta(minutes=n))
        if unit == "Hours":
            return plus_exact(d, timedelta(hours=n))
        if unit == "Days":
            return plus_days(d, n)
        if unit == "Weeks":
            return plus_days(d, 7 * n)
        return plus_months(d, n if unit == "Months" else 12 * n)

    return apply


for _unit in ("Minutes", "Hours", "Days", "Weeks", "Months", "Years"):
    for _verb, _sign in (("plus", 1), ("minus", -1)):
        _SPECS.append(
            FunctionSpec(
                f"{_verb}{_unit}",
                (("myDateTime", DATETIME), (_unit.lower(), INT)),
                DATETIME,
                f"the DateTime {'plus' if _sign > 0 else 'minus'} a number of {_unit.lower()}",
                _shift(_unit, _sign),
            )
        )

FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType({s.name: s for s in _SPECS})
