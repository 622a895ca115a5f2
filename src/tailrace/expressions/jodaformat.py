"""Printing a DateTime with a Joda-Time `DateTimeFormat` pattern (what `format(dt, pattern)` does).

Tokenising follows Joda: a run of one ASCII letter is a field, `'...'` is literal text (`''` is a
quote), any other character is literal. Letters Joda does not define (`T`, `u`, `X`, ...) are an
error, "Illegal pattern component", as in the service. Text is English (the service's locale).

    G era (AD)          C century of era    Y year of era       y year          x weekyear
    w week of weekyear  e day of week (1=Mon)   E day name (E..EEE Tue, EEEE Tuesday)
    M month (M 5, MM 05, MMM May, MMMM May)     d day of month      D day of year
    a AM/PM   h 1-12   H 0-23   k 1-24   K 0-11   m minute   s second   S fraction of second
    z zone short name (UTC, PDT), zzzz long name   Z -0800   ZZ -08:00   ZZZ zone id
Two letters of Y, y or x print the last two digits of the year.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tailrace.expressions.values import as_utc_aware

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_FIELDS = set("GCYyxweEMdDahHkKmsSzZ")
_UTC_IDS = {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"}

# Long zone names as Java's English locale data gives them (standard, daylight); others print
# their offset, which is what Joda falls back to when it has no name.
_LONG_NAMES: dict[str, tuple[str, str]] = {}
for _ids, _names in (
    ("UTC", ("Coordinated Universal Time", "Coordinated Universal Time")),
    ("GMT Etc/GMT", ("Greenwich Mean Time", "Greenwich Mean Time")),
    (
        "America/New_York US/Eastern America/Detroit America/Toronto EST5EDT",
        ("Eastern Standard Time", "Eastern Daylight Time"),
    ),
    (
        "America/Chicago US/Central America/Winnipeg CST6CDT",
        ("Central Standard Time", "Central Daylight Time"),
    ),
    (
        "America/Denver US/Mountain America/Edmonton MST7MDT",
        ("Mountain Standard Time", "Mountain Daylight Time"),
    ),
    ("America/Phoenix US/Arizona", ("Mountain Standard Time", "Mountain Daylight Time")),
    (
        "America/Los_Angeles US/Pacific America/Vancouver PST8PDT",
        ("Pacific Standard Time", "Pacific Daylight Time"),
    ),
    ("America/Anchorage US/Alaska", ("Alaska Standard Time", "Alaska Daylight Time")),
    ("Pacific/Honolulu US/Hawaii", ("Hawaii Standard Time", "Hawaii Daylight Time")),
    ("America/Sao_Paulo", ("Brasilia Time", "Brasilia Summer Time")),
    ("Europe/London", ("Greenwich Mean Time", "British Summer Time")),
    ("Europe/Dublin", ("Greenwich Mean Time", "Irish Summer Time")),
    ("Europe/Lisbon", ("Western European Time", "Western European Summer Time")),
    (
        "Europe/Berlin Europe/Paris Europe/Madrid Europe/Rome Europe/Amsterdam Europe/Brussels Europe/Vienna "
        "Europe/Zurich Europe/Stockholm Europe/Oslo Europe/Copenhagen Europe/Warsaw Europe/Prague "
        "Europe/Budapest CET",
        ("Central European Time", "Central European Summer Time"),
    ),
    (
        "Europe/Athens Europe/Helsinki Europe/Kiev Europe/Kyiv Europe/Bucharest Europe/Sofia EET",
        ("Eastern European Time", "Eastern European Summer Time"),
    ),
    ("Europe/Moscow", ("Moscow Standard Time", "Moscow Daylight Time")),
    ("Asia/Tokyo", ("Japan Standard Time", "Japan Daylight Time")),
    ("Asia/Seoul", ("Korea Standard Time", "Korea Daylight Time")),
    ("Asia/Shanghai Asia/Chongqing PRC", ("China Standard Time", "China Daylight Time")),
    ("Asia/Hong_Kong", ("Hong Kong Time", "Hong Kong Summer Time")),
    ("Asia/Singapore", ("Singapore Time", "Singapore Summer Time")),
    ("Asia/Kolkata Asia/Calcutta", ("India Standard Time", "India Daylight Time")),
    ("Asia/Dubai", ("Gulf Standard Time", "Gulf Daylight Time")),
):
    for _id in _ids.split():
        _LONG_NAMES[_id] = _names


class PatternError(ValueError):
    """The pattern is not a valid Joda-Time pattern (message as Joda words it)."""


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> tuple[tuple[str, str], ...]:
    """Tokens of a pattern: ('field', 'yyyy') or ('text', literal)."""
    if not pattern:
        raise PatternError("Invalid pattern specification")
    out: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c.isascii() and c.isalpha():
            j = i + 1
            while j < n and pattern[j] == c:
                j += 1
            if c not in _FIELDS:
                raise PatternError(f"Illegal pattern component: {pattern[i:j]}")
            out.append(("field", pattern[i:j]))
            i = j
            continue
        buf: list[str] = []
        quoted = False
        while i < n:
            c = pattern[i]
            if c == "'":
                if i + 1 < n and pattern[i + 1] == "'":
                    buf.append("'")
                    i += 1
                else:
                    quoted = not quoted
            elif not quoted and c.isascii() and c.isalpha():
                break
            else:
                buf.append(c)
            i += 1
        out.append(("text", "".join(buf)))
    return tuple(out)


def format_datetime(dt: datetime, pattern: str) -> str:
    dt = as_utc_aware(dt)
    return "".join(_field(dt, tok) if kind == "field" else tok for kind, tok in compile_pattern(pattern))


def _pad(value: int, width: int) -> str:
    return ("-" + str(-value).rjust(width, "0")) if value < 0 else str(value).rjust(width, "0")


def _year_text(year: int, width: int) -> str:
    if width == 2:
        return _pad(abs(year) % 100, 2)
    return _pad(year, width)


def _field(dt: datetime, tok: str) -> str:
    c, n = tok[0], len(tok)
    if c == "G":
        return "AD"
    if c == "C":
        return _pad(dt.year // 100, n)
    if c in "Yy":
        return _year_text(dt.year, n)
    if c == "x":
        return _year_text(dt.isocalendar().year, n)
    if c == "w":
        return _pad(dt.isocalendar().week, n)
    if c == "e":
        return _pad(dt.isoweekday(), n)
    if c == "E":
        name = DAYS[dt.weekday()]
        return name if n >= 4 else name[:3]
    if c == "M":
        if n >= 3:
            name = MONTHS[dt.month - 1]
            return name if n >= 4 else name[:3]
        return _pad(dt.month, n)
    if c == "d":
        return _pad(dt.day, n)
    if c == "D":
        return _pad(dt.timetuple().tm_yday, n)
    if c == "a":
        return "AM" if dt.hour < 12 else "PM"
    if c == "h":
        return _pad(dt.hour % 12 or 12, n)
    if c == "H":
        return _pad(dt.hour, n)
    if c == "k":
        return _pad(dt.hour or 24, n)
    if c == "K":
        return _pad(dt.hour % 12, n)
    if c == "m":
        return _pad(dt.minute, n)
    if c == "s":
        return _pad(dt.second, n)
    if c == "S":
        # Joda keeps milliseconds: print the fraction truncated (or zero-extended) to n digits.
        digits = min(n, 18)
        millis = dt.microsecond // 1000
        return _pad(millis * 10**digits // 1000, digits)
    if c == "z":
        return long_zone_name(dt) if n >= 4 else short_zone_name(dt)
    # c == "Z"
    if n >= 3:
        return zone_id(dt)
    return offset_text(dt.utcoffset() or timedelta(0), colon=n == 2)


def offset_text(offset: timedelta, *, colon: bool) -> str:
    """`-0800` / `-08:00` (seconds only when the offset has them, as Joda prints)."""
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    sep = ":" if colon else ""
    text = f"{sign}{hours:02d}{sep}{minutes:02d}"
    if seconds:
        text += f"{sep}{seconds:02d}"
    return text


def zone_id(dt: datetime) -> str:
    tz = dt.tzinfo
    if isinstance(tz, ZoneInfo):
        return "UTC" if tz.key in _UTC_IDS else tz.key
    offset = dt.utcoffset() or timedelta(0)
    return "UTC" if offset == timedelta(0) else offset_text(offset, colon=True)


def short_zone_name(dt: datetime) -> str:
    tz = dt.tzinfo
    if tz is UTC or (isinstance(tz, ZoneInfo) and tz.key in _UTC_IDS):
        return "UTC"
    offset = dt.utcoffset() or timedelta(0)
    if isinstance(tz, timezone):
        return "UTC" if offset == timedelta(0) else offset_text(offset, colon=True)
    name = dt.tzname() or ""
    if not name or name[0] in "+-" or name[0].isdigit():
        return offset_text(offset, colon=True)
    return name


def long_zone_name(dt: datetime) -> str:
    ident = zone_id(dt)
    names = _LONG_NAMES.get(ident)
    if names is None:
        return offset_text(dt.utcoffset() or timedelta(0), colon=True)
    return names[1] if dt.dst() else names[0]
