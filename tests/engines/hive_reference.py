"""An independent, pure-Python reading of the seed script with Hive's semantics.

Written from the Hive sources' rules, not from the engine: LazySimpleSerDe field splitting,
GenericUDTFJSONTuple, UDFSubstr.makeIndex, UDFToLong's strict parse, ORDER BY with NULLs
first (ties in input order), COUNT(col) counting non-NULL values, `\\N` for NULL on output.
"""

from __future__ import annotations

import json
import re

KEYS = ["host", "user", "method", "path", "code", "size", "referer", "agent"]


def split_fields(line: str, n: int) -> list[str | None]:
    fields: list[str | None] = list(line.split("\t")[:n])
    fields += [None] * (n - len(fields))
    return [None if f == "\\N" else f for f in fields]


def json_tuple(text: str | None, keys: list[str]) -> list[str | None]:
    if text is None:
        return [None] * len(keys)
    try:
        obj = json.loads(text)
    except ValueError:
        return [None] * len(keys)
    if not isinstance(obj, dict):
        return [None] * len(keys)
    out: list[str | None] = []
    for k in keys:
        v = obj.get(k)
        if v is None:
            out.append(None)
        elif isinstance(v, dict | list):
            out.append(json.dumps(v, separators=(",", ":"), ensure_ascii=False))
        elif isinstance(v, bool):
            out.append("true" if v else "false")
        else:
            out.append(str(v))
    return out


def hive_substr(s: str | None, pos: int, length: int = 2**31 - 1) -> str | None:
    if s is None:
        return None
    if length <= 0 or abs(pos) > len(s):
        return ""
    start = pos - 1 if pos > 0 else len(s) + pos if pos < 0 else 0
    end = len(s) if len(s) - start < length else start + length
    return s[start:end]


def to_bigint(s: str | None) -> int | None:
    # LazyLong.parseLong: digits, then an optional fraction that is dropped ('12.5' is 12).
    m = None if s is None else re.fullmatch(r"([+-]?[0-9]*)(?:\.[0-9]*)?", s)
    if s is None or m is None or s in ("", "+", "-"):
        return None
    v = int(m.group(1)) if m.group(1).lstrip("+-") else 0
    return v if -(2**63) <= v < 2**63 else None


def _text(v: object) -> str:
    return "\\N" if v is None else str(v)


def seed_outputs(lines: list[str], date: str) -> tuple[bytes, bytes, int, int]:
    """(archive file, stats file, short lines, bad JSON) for lines in input order."""
    rows = []
    short = bad = 0
    for line in lines:
        dt, _tag, js = split_fields(line, 3)
        if regexp_day(dt) != date:
            continue
        values = json_tuple(js, KEYS)
        if len(line.split("\t")) < 3:
            short += 1
        elif js is not None and not _parses(js):
            bad += 1
        rows.append([dt, *values])
    archive = sorted(rows, key=lambda r: (r[0] is not None, r[0] or ""))
    arch_text = "".join(
        "\t".join(_text(v) for v in [*r[:6], to_bigint(r[6]), *r[7:]]) + "\n" for r in archive
    )
    counts: dict[str | None, int] = {}
    for r in rows:
        counts[r[4]] = counts.get(r[4], 0) + (1 if r[0] is not None else 0)
    stats = sorted(counts.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
    stat_text = "".join(f"{_text(p)}\t{c}\n" for p, c in stats)
    return arch_text.encode(), stat_text.encode(), short, bad


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def regexp_day(dt: str | None) -> str | None:
    head = hive_substr(dt, 0, 10)
    return None if head is None else head.replace("-", "")
