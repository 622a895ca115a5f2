"""Hive built-in functions DuckDB has no equivalent for, as Python scalar functions.

Each follows the Language Manual's stated behaviour (NULL in gives NULL out: DuckDB's default
null handling skips the call). They run per row, so none of them is on the seed's path
(json_tuple, substr, regexp_replace, count).
"""

from __future__ import annotations

import calendar
import functools
import re
import zlib
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import urlsplit

import duckdb
from duckdb.func import FunctionNullHandling
from duckdb.sqltypes import BIGINT, BLOB, DOUBLE, VARCHAR

from tailrace.engines.hive import javatime, udfs_stats
from tailrace.engines.hive.udfs_format import format_number, format_pattern, printf
from tailrace.engines.hive.udfs_json import get_json_object


def find_in_set(needle: str, haystack: str) -> int:
    if "," in needle:
        return 0
    parts = haystack.split(",")
    return parts.index(needle) + 1 if needle in parts else 0


def parse_url(url: str, part: str, key: str | None = None) -> str | None:
    try:
        u = urlsplit(url)
    except ValueError:
        return None
    if not u.scheme:
        return None
    part = part.upper()
    if part == "QUERY" and key is not None:
        for pair in u.query.split("&"):
            k, sep, v = pair.partition("=")
            if k == key and sep:
                return v
        return None
    host = u.hostname
    value = {
        "HOST": host,
        "PATH": u.path,
        "QUERY": u.query,
        "REF": u.fragment,
        "PROTOCOL": u.scheme,
        "AUTHORITY": u.netloc,
        "FILE": u.path + ("?" + u.query if u.query else ""),
        "USERINFO": u.netloc.rpartition("@")[0] if "@" in u.netloc else None,
    }.get(part)
    return value or None


def parse_url_2(url: str, part: str) -> str | None:
    return parse_url(url, part)


def str_to_map(text: str, pair_delim: str, kv_delim: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pair in re.split(pair_delim, text):
        k, *rest = re.split(kv_delim, pair, maxsplit=1)
        out[k] = rest[0] if rest else None
    return out


def sentences(text: str) -> list[list[str]]:
    """Sentences of words (BreakIterator-like: split at . ! ?, words are runs of letters/digits)."""
    out: list[list[str]] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        words = re.findall(r"[\w']+", sentence)
        if words:
            out.append(words)
    return out


def soundex(text: str) -> str:
    codes = {
        c: str(d) for d, letters in enumerate(["", "BFPV", "CGJKQSXZ", "DT", "L", "MN", "R"]) for c in letters
    }
    s = "".join(c for c in text.upper() if c.isalpha())
    if not s:
        return ""
    out, last = s[0], codes.get(s[0], "")
    for c in s[1:]:
        code = codes.get(c, "")
        if code and code != last:
            out += code
        if c not in "HW":
            last = code
    return (out + "000")[:4]


def conv(num: str, from_base: int, to_base: int) -> str | None:
    """UDFConv: digits read up to the first one invalid in the base (conv('zz', 16, 10) is 0),
    through an unsigned 64-bit value (-1 on overflow); a negative to_base prints a sign."""
    if not (2 <= from_base <= 36 and 2 <= abs(to_base) <= 36) or not num:
        return None
    negative = num.startswith("-")
    val = 0
    for ch in num[1:] if negative else num:
        d = int(ch, 36) if ch.isascii() and ch.isalnum() else -1
        if not 0 <= d < from_base:
            break
        val = val * from_base + d
        if val >= 1 << 64:
            val = (1 << 64) - 1
            break
    signed = val - (1 << 64) if val >= 1 << 63 else val
    if negative and to_base > 0:
        signed = -1 if signed < 0 else -signed
    if to_base < 0 and signed < 0:
        signed, negative = -signed, True
    value = signed & ((1 << 64) - 1)
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        value, r = divmod(value, abs(to_base))
        out = digits[r] + out
        if value == 0:
            break
    return ("-" if negative and to_base < 0 else "") + out


def java_string_hash(text: str) -> int:
    """String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _mask_char(c: str) -> str:
    if "A" <= c <= "Z":
        return "X"
    if "a" <= c <= "z":
        return "x"
    if "0" <= c <= "9":
        return "n"
    return c


def mask_first_n(text: str, n: int) -> str:
    n = max(n, 0)
    return "".join(map(_mask_char, text[:n])) + text[n:]


def mask_last_n(text: str, n: int) -> str:
    n = min(max(n, 0), len(text))
    return text[: len(text) - n] + "".join(map(_mask_char, text[len(text) - n :]))


def mask_show_first_n(text: str, n: int) -> str:
    n = max(n, 0)
    return text[:n] + "".join(map(_mask_char, text[n:]))


def mask_show_last_n(text: str, n: int) -> str:
    n = min(max(n, 0), len(text))
    return "".join(map(_mask_char, text[: len(text) - n])) + text[len(text) - n :]


def mask(text: str, upper: str, lower: str, digit: str) -> str:
    """mask(s, U, l, d): each letter and digit replaced by the first character given for it."""
    subs = {"X": upper[:1] or "X", "x": lower[:1] or "x", "n": digit[:1] or "n"}
    return "".join(subs[_mask_char(c)] if c.isascii() and c.isalnum() else c for c in text)


def bround(value: float, places: int) -> float:
    """HALF_EVEN on the double's shortest decimal text (BigDecimal.valueOf), as Hive's bround."""
    if value != value or value in (float("inf"), float("-inf")):
        return value
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def crc32(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


# --- dates ----------------------------------------------------------------------------------


def _parse_when(text: str) -> datetime | None:
    """Hive's reading of a date or timestamp string ('yyyy-MM-dd[ HH:mm:ss[.fff]]')."""
    t = text.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(t[:26] if "." in t else t[:19], fmt)
        except ValueError:
            continue
    try:
        return datetime.strptime(t[:10], "%Y-%m-%d")
    except ValueError:
        return None


_MONTHS = list(calendar.month_name)
_DAYS = list(calendar.day_name)


def _us_week_of_year(when: datetime) -> int:
    """SimpleDateFormat's `w` in the US locale: weeks start on Sunday and week 1 is the one
    holding January 1 (so the last days of December can be week 1 of the next year)."""
    sunday = when - timedelta(days=(when.weekday() + 1) % 7)
    if (sunday + timedelta(days=6)).year > when.year:
        return 1
    jan1 = when.replace(month=1, day=1)
    offset = (jan1.weekday() + 1) % 7
    return (when.timetuple().tm_yday - 1 + offset) // 7 + 1


def java_date_format(when: datetime, pattern: str) -> str:
    """SimpleDateFormat's letters (G y M d H h m s S E a D u k K z Z w) and quoted text."""
    out: list[str] = []
    for m in javatime.TOKEN.finditer(pattern):
        if m.group(1) is not None or m.group(0) == "''":
            out.append(javatime.quoted(m))
            continue
        tok = m.group(0)
        ch, n = tok[0], len(tok)
        if not ch.isalpha():
            out.append(tok)
            continue
        if ch == "G":
            out.append("AD" if when.year > 0 else "BC")
        elif ch in "yY":
            out.append(f"{when.year % 100:02d}" if n == 2 else f"{when.year:0{n}d}")
        elif ch == "M":
            if n >= 4:
                out.append(_MONTHS[when.month])
            elif n == 3:
                out.append(_MONTHS[when.month][:3])
            else:
                out.append(f"{when.month:0{n}d}")
        elif ch == "d":
            out.append(f"{when.day:0{n}d}")
        elif ch == "H":
            out.append(f"{when.hour:0{n}d}")
        elif ch == "k":
            out.append(f"{when.hour or 24:0{n}d}")
        elif ch == "h":
            out.append(f"{(when.hour % 12) or 12:0{n}d}")
        elif ch == "K":
            out.append(f"{when.hour % 12:0{n}d}")
        elif ch == "m":
            out.append(f"{when.minute:0{n}d}")
        elif ch == "s":
            out.append(f"{when.second:0{n}d}")
        elif ch == "S":
            out.append(f"{when.microsecond // 1000:0{n}d}")
        elif ch == "E":
            name = _DAYS[when.weekday()]
            out.append(name if n >= 4 else name[:3])
        elif ch == "a":
            out.append("AM" if when.hour < 12 else "PM")
        elif ch == "D":
            out.append(f"{when.timetuple().tm_yday:0{n}d}")
        elif ch == "u":
            out.append(str(when.isoweekday()))
        elif ch == "w":
            out.append(f"{_us_week_of_year(when):0{n}d}")
        elif ch == "W":
            first = (when.replace(day=1).weekday() + 1) % 7  # Sunday 0, as in the US locale
            out.append(f"{(when.day - 1 + first) // 7 + 1:0{n}d}")
        elif ch == "F":
            out.append(f"{(when.day - 1) // 7 + 1:0{n}d}")
        elif ch == "z":
            out.append("UTC")
        elif ch == "Z":
            out.append("+0000")
        else:
            raise ValueError(f"unknown pattern letter '{ch}'")
    return "".join(out)


def date_format(text: str, pattern: str) -> str | None:
    when = _parse_when(text)
    return None if when is None else java_date_format(when, pattern)


def months_between(a: str, b: str) -> float | None:
    """MONTHS_BETWEEN: whole months when both are the same day or both month ends, else the
    day difference (with time) over 31, rounded to 8 places."""
    x, y = _parse_when(a), _parse_when(b)
    if x is None or y is None:
        return None
    months = (x.year - y.year) * 12 + (x.month - y.month)
    x_end = x.day == calendar.monthrange(x.year, x.month)[1]
    y_end = y.day == calendar.monthrange(y.year, y.month)[1]
    if x.day == y.day or (x_end and y_end):
        return float(months)
    secs = lambda d: ((d.day * 24 + d.hour) * 60 + d.minute) * 60 + d.second  # noqa: E731
    return round(months + (secs(x) - secs(y)) / (31 * 86400), 8)


def add_months(text: str, n: int) -> str | None:
    when = _parse_when(text)
    if when is None:
        return None
    month0 = when.month - 1 + n
    year, month = when.year + month0 // 12, month0 % 12 + 1
    last = calendar.monthrange(year, month)[1]
    old_last = calendar.monthrange(when.year, when.month)[1]
    day = last if when.day == old_last else min(when.day, last)
    return date(year, month, day).isoformat()


def last_day(text: str) -> str | None:
    when = _parse_when(text)
    if when is None:
        return None
    return date(when.year, when.month, calendar.monthrange(when.year, when.month)[1]).isoformat()


_DAY_NAMES = {d[:2].upper(): i for i, d in enumerate(_DAYS)}


def next_day(text: str, day: str) -> str | None:
    when = _parse_when(text)
    target = _DAY_NAMES.get(day.strip()[:2].upper())
    if when is None or target is None:
        return None
    ahead = (target - when.weekday() + 6) % 7 + 1
    return (when.date() + timedelta(days=ahead)).isoformat()


def trunc_date(text: str, unit: str) -> str | None:
    when = _parse_when(text)
    if when is None:
        return None
    u = unit.upper()
    if u in ("MONTH", "MON", "MM"):
        return date(when.year, when.month, 1).isoformat()
    if u in ("YEAR", "YYYY", "YY"):
        return date(when.year, 1, 1).isoformat()
    if u in ("QUARTER", "Q"):
        return date(when.year, (when.month - 1) // 3 * 3 + 1, 1).isoformat()
    return None


_FUNCTION_NAMES = (
    "__hive_printf",
    "__hive_json_path",
    "__hive_find_in_set",
    "__hive_format_number",
    "__hive_format_pattern",
    "__hive_parse_url",
    "__hive_parse_url_key",
    "__hive_sentences",
    "__hive_soundex",
    "__hive_conv",
    "__hive_crc32",
    "__hive_string_hash",
    "__hive_mask_first_n",
    "__hive_mask_last_n",
    "__hive_mask_show_first_n",
    "__hive_mask_show_last_n",
    "__hive_date_format",
    "__hive_months_between",
    "__hive_add_months",
    "__hive_last_day",
    "__hive_next_day",
    "__hive_trunc",
    "__hive_str_to_map",
    "__hive_sha2",
    "__hive_aes_encrypt",
    "__hive_aes_decrypt",
    "__hive_bround",
    "__hive_mask",
    *udfs_stats.NAMES,
)


@functools.cache
def _functions() -> dict[str, tuple[Any, list[Any], Any]]:
    """Name -> (function, parameter types, return type); built on first use (DuckDB's list and
    map types take a few ms to make, which the seed's statements never need)."""
    table = _table()
    return {name: (fn, params, ret) for name, fn, params, ret in table}


def _table() -> list[tuple[str, Any, list[Any], Any]]:
    from tailrace.engines.hive import udfs_bytes  # (`cryptography`: only for a script that calls one)

    return [
        ("__hive_printf", None, [], None),
        ("__hive_json_path", get_json_object, [VARCHAR, VARCHAR], VARCHAR),
        ("__hive_find_in_set", find_in_set, [VARCHAR, VARCHAR], BIGINT),
        ("__hive_format_number", format_number, [DOUBLE, BIGINT], VARCHAR),
        ("__hive_format_pattern", format_pattern, [DOUBLE, VARCHAR], VARCHAR),
        ("__hive_parse_url", parse_url_2, [VARCHAR, VARCHAR], VARCHAR),
        ("__hive_parse_url_key", parse_url, [VARCHAR, VARCHAR, VARCHAR], VARCHAR),
        ("__hive_sentences", sentences, [VARCHAR], duckdb.list_type(duckdb.list_type(VARCHAR))),
        ("__hive_soundex", soundex, [VARCHAR], VARCHAR),
        ("__hive_conv", conv, [VARCHAR, BIGINT, BIGINT], VARCHAR),
        ("__hive_crc32", crc32, [VARCHAR], BIGINT),
        ("__hive_string_hash", java_string_hash, [VARCHAR], BIGINT),
        ("__hive_mask_first_n", mask_first_n, [VARCHAR, BIGINT], VARCHAR),
        ("__hive_mask_last_n", mask_last_n, [VARCHAR, BIGINT], VARCHAR),
        ("__hive_mask_show_first_n", mask_show_first_n, [VARCHAR, BIGINT], VARCHAR),
        ("__hive_mask_show_last_n", mask_show_last_n, [VARCHAR, BIGINT], VARCHAR),
        ("__hive_date_format", date_format, [VARCHAR, VARCHAR], VARCHAR),
        ("__hive_months_between", months_between, [VARCHAR, VARCHAR], DOUBLE),
        ("__hive_add_months", add_months, [VARCHAR, BIGINT], VARCHAR),
        ("__hive_last_day", last_day, [VARCHAR], VARCHAR),
        ("__hive_next_day", next_day, [VARCHAR, VARCHAR], VARCHAR),
        ("__hive_trunc", trunc_date, [VARCHAR, VARCHAR], VARCHAR),
        ("__hive_sha2", udfs_bytes.sha2, [VARCHAR, BIGINT], VARCHAR),
        ("__hive_aes_encrypt", udfs_bytes.aes_encrypt, [VARCHAR, VARCHAR], BLOB),
        ("__hive_aes_decrypt", udfs_bytes.aes_decrypt, [BLOB, VARCHAR], BLOB),
        ("__hive_bround", bround, [DOUBLE, BIGINT], DOUBLE),
        ("__hive_mask", mask, [VARCHAR, VARCHAR, VARCHAR, VARCHAR], VARCHAR),
        *udfs_stats.table(),
        (
            "__hive_str_to_map",
            str_to_map,
            [VARCHAR, VARCHAR, VARCHAR],
            duckdb.map_type(VARCHAR, VARCHAR),
        ),
    ]


def _or_null(fn: Any) -> Any:
    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        try:
            return fn(*args)
        except (ValueError, TypeError, OverflowError, IndexError, RecursionError, re.error):
            return None

    return call


def _printf(fmt: str | None, args: list[Any] | None) -> str | None:
    return None if fmt is None else _or_null(printf)(fmt, list(args or []))


# Macros in serde that call one of these functions.
_USED_BY = {"__hive_bucket": "__hive_string_hash", "__hive_hash": "__hive_string_hash"}


def ensure(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Register the functions a translated statement uses, once per connection.

    Lazily: DuckDB's Python functions import numpy, which the seed's statements never need.
    """
    sql = sql.lower()
    if "__hive_" not in sql:
        return
    wanted = {name for name in _FUNCTION_NAMES if name in sql}
    wanted |= {fn for macro, fn in _USED_BY.items() if macro in sql}
    if not wanted:
        return
    rows = con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name IN ?", [sorted(wanted)]
    ).fetchall()
    for name in sorted(wanted - {r[0] for r in rows}):
        if name == "__hive_printf":
            con.create_function(
                name,
                _printf,
                [VARCHAR, duckdb.list_type(VARCHAR)],
                VARCHAR,
                null_handling=FunctionNullHandling.SPECIAL,
            )
        else:
            fn, params, ret = _functions()[name]
            con.create_function(name, _or_null(fn), params, ret, null_handling=FunctionNullHandling.SPECIAL)
