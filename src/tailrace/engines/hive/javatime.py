"""Java SimpleDateFormat patterns (what from_unixtime and unix_timestamp take) as DuckDB
strftime/strptime formats.

sqlglot's own conversion mangles quoted text (`yyyy-MM-dd'T'HH` keeps the quotes) and leaves
`SSS` as letters, so the Hive parser keeps each call's pattern as written (`java_pattern`) and
the translator converts it here.
"""

from __future__ import annotations

import re

from sqlglot import exp

META_KEY = "java_pattern"

# Quoted text ('' inside it, or alone, is one quote), a run of one letter, other characters.
TOKEN = re.compile(r"'((?:[^']|'')+)'|''|([A-Za-z])\2*|[^A-Za-z']+")


def raw_pattern(arg: exp.Expr | None) -> str | None:
    """The pattern text of a literal argument ('a' 'b' adjacent literals are one string in
    Hive); None for anything computed."""
    if isinstance(arg, exp.Literal) and arg.is_string:
        return str(arg.this)
    if isinstance(arg, exp.Concat) and all(
        isinstance(a, exp.Literal) and a.is_string for a in arg.expressions
    ):
        return "".join(str(a.this) for a in arg.expressions)
    return None


def keep_pattern(node: exp.Expr, args: list[exp.Expr]) -> exp.Expr:
    """Record the call's pattern as written on the node sqlglot built."""
    if len(args) > 1:
        raw = raw_pattern(args[1])
        if raw is not None:
            node.meta[META_KEY] = raw
    return node


def quoted(m: re.Match[str]) -> str:
    """The text of a quoted token."""
    return "'" if m.group(1) is None else m.group(1).replace("''", "'")


def _letters(ch: str, n: int, *, parsing: bool) -> str | None:
    """One run of a pattern letter as a strftime directive; None when there is none."""
    unpadded = "" if parsing else "-"
    simple = {"d": "d", "H": "H", "h": "I", "m": "M", "s": "S"}
    if ch in simple:
        return f"%{simple[ch]}" if n >= 2 else f"%{unpadded}{simple[ch]}"
    if ch == "y":
        return "%y" if n == 2 else "%Y"
    if ch == "M":
        return "%B" if n >= 4 else "%b" if n == 3 else "%m" if n == 2 else f"%{unpadded}m"
    if ch == "E":
        return "%A" if n >= 4 else "%a"
    if ch == "a":
        return "%p"
    if ch in "XZ" and parsing:
        return "%z"  # an offset: +09, +0900, +09:00 (Z as UTC is mapped by the caller)
    if ch == "S" and n == 3:
        return "%g"
    if ch == "D":
        return "%j" if n == 3 else f"%{unpadded}j" if n == 1 else None
    return None


def to_strftime(pattern: str, *, parsing: bool = False) -> str | None:
    """The DuckDB format for a SimpleDateFormat pattern, or None when a letter has no
    equivalent (the caller then formats in Python, or keeps sqlglot's reading)."""
    out: list[str] = []
    for m in TOKEN.finditer(pattern):
        if m.group(1) is not None or m.group(0) == "''":
            out.append(quoted(m).replace("%", "%%"))
        elif m.group(2) is not None:
            tok = m.group(0)
            directive = _letters(tok[0], len(tok), parsing=parsing)
            if directive is None:
                return None
            out.append(directive)
        else:
            out.append(m.group(0).replace("%", "%%"))
    if "".join(m.group(0) for m in TOKEN.finditer(pattern)) != pattern:
        return None  # an unterminated quote: SimpleDateFormat refuses the pattern
    return "".join(out)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def from_unixtime_sql(java: str | None, fmt: str, timezone: str) -> str:
    """from_unixtime(__X__[, pattern]) as DuckDB SQL; `fmt` is sqlglot's reading, used when
    the pattern was not a literal."""
    when = f"timezone({_quote(timezone)}, to_timestamp(__X__))"  # a SET value: quoted, never pasted
    if java is None:
        return f"strftime({when}, {fmt})"
    duck = to_strftime(java)
    if duck is None:  # letters strftime lacks (w, u, k, G...): SimpleDateFormat in Python
        return f"__hive_date_format(strftime({when}, '%Y-%m-%d %H:%M:%S.%f'), {_quote(java)})"
    return f"strftime({when}, {_quote(duck)})"
