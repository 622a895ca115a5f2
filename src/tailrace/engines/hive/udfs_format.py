"""Hive's formatting functions in Python: printf (java.util.Formatter) and format_number
(java.text.DecimalFormat), registered in DuckDB by `udfs`."""

from __future__ import annotations

import re
from typing import Any

MAX_WIDTH = 10_000
"""The widest printf field or format_number precision a script may ask for."""


_PRINTF = re.compile(r"%([-#+ 0,(]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def printf(fmt: str, args: list[Any]) -> str:
    """java.util.Formatter's common conversions (%s %d %f %e %x %o %c %b %%)."""
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        flags, width, prec, conv = m.group(1), m.group(2), m.group(3), m.group(4)
        if int(width or 0) > MAX_WIDTH or int(prec or 0) > MAX_WIDTH:
            # A script must not make the server build gigabyte strings.
            raise ValueError("printf width or precision too large")
        if conv == "%":
            return "%"
        if conv == "n":
            return "\n"
        value = next(it, None)
        py_flags = flags.replace("(", "")
        spec = f"%{py_flags.replace(',', '')}{width or ''}"
        if conv in "sS":
            text = "null" if value is None else _java_str(value)
            text = text[: int(prec)] if prec else text
            out = (spec + "s") % text
            return out.upper() if conv == "S" else out
        if conv in "bB":
            # Arguments arrive as Hive's text, so a boolean false is the string "false".
            return (spec + "s") % ("false" if value in (None, False, "false") else "true")
        if conv in "hH":
            out = (spec + "s") % ("null" if value is None else f"{_java_hash(value):x}")
            return out.upper() if conv == "H" else out
        if value is None:
            return "null"
        if conv == "d":
            if "," in flags:
                return (f"{{:{'<' if '-' in flags else '>'}{width or ''},}}").format(int(value))
            return (spec + "d") % int(value)
        if conv in "fFeEgG":
            if "," in flags:
                return f"{float(value):{width or ''},.{prec or 6}f}"
            return (spec + f".{prec or 6}{conv}") % float(value)
        if conv in "aA":
            mant, _, exp_ = float(value).hex().partition("p")
            mant = mant.rstrip("0") + ("0" if mant.rstrip("0").endswith(".") else "")
            return (spec + "s") % f"{mant}p{int(exp_)}"
        if conv in "xXoc":
            return (spec + conv) % (int(value) if conv != "c" else chr(int(value)))
        return m.group(0)

    return _PRINTF.sub(one, fmt)


def _java_hash(value: Any) -> int:
    """Java's hashCode of the argument (an Integer is itself, a String String.hashCode)."""
    text = str(value)
    if re.fullmatch(r"-?\d+", text) and -(2**31) <= int(text) < 2**31:
        return int(text) & 0xFFFFFFFF
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h


def format_pattern(value: float, pattern: str) -> str | None:
    """format_number(x, 'pattern'): java.text.DecimalFormat's digits (`#`, `0`), grouping
    (`,`), decimal point, literal prefix and suffix; rounded HALF_EVEN."""
    from decimal import ROUND_HALF_EVEN, Decimal

    m = re.search(r"[#0,.]+", pattern.split(";")[0])
    if m is None or len(pattern) > MAX_WIDTH:
        return None
    prefix, number, suffix = pattern[: m.start()], m.group(0), pattern.split(";")[0][m.end() :]
    # A percent (per-mille) sign in the affixes multiplies as a double first, as DecimalFormat does.
    if "%" in prefix + suffix:
        value = float(value) * 100
    elif "\u2030" in prefix + suffix:
        value = float(value) * 1000
    whole, dot, frac = number.partition(".")
    group = len(whole) - whole.rfind(",") - 1 if "," in whole else 0
    min_int = whole.count("0") or (1 if dot and "#" in whole else 0)
    min_frac, max_frac = frac.count("0"), frac.count("0") + frac.count("#")
    negative = value < 0 or (value == 0 and str(value).startswith("-"))
    d = abs(Decimal(repr(float(value)))).quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_EVEN)
    text = f"{d:.{max_frac}f}"
    int_text, _, frac_text = text.partition(".")
    frac_text = frac_text.rstrip("0").ljust(min_frac, "0")
    int_text = int_text.lstrip("0").rjust(min_int, "0")
    if group:
        head = len(int_text) % group or group
        int_text = ",".join(
            [int_text[:head]] + [int_text[i : i + group] for i in range(head, len(int_text), group)]
        )
    out = int_text + ("." + frac_text if frac_text else "")
    return ("-" if negative else "") + prefix + (out or "0") + suffix


def _java_str(value: Any) -> str:
    from tailrace.engines.hive.serde import hive_text

    return hive_text(value)


def format_number(value: float, places: int) -> str | None:
    """'#,###,###.##' rounded HALF_EVEN to `places` decimals (DecimalFormat)."""
    if places < 0 or places > MAX_WIDTH:
        return None
    from decimal import ROUND_HALF_EVEN, Decimal

    d = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{d:,.{places}f}"
