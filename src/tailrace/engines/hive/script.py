"""A Hive script as the Hive CLI reads it: statements split at `;`, variables substituted.

Positions are kept all the way: every statement knows where it starts in the file, and a
substituted statement can map an offset in its new text back to the original text, so an
error found after `${DATE}` became `20121221` still points at the right line and column.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text (without the `;`) and where it starts."""

    number: int
    text: str
    offset: int


class SourceMap:
    """Offsets in a script to 1-based (line, column)."""

    def __init__(self, script: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", script)]

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


def split_statements(script: str) -> list[Statement]:
    """Split at `;` outside quotes, backticks and `--` comments; skip empty statements.

    Hive string literals use backslash escapes, so `'a\\';'` does not end at the `;`.
    """
    out: list[Statement] = []
    start = 0
    i = 0
    n = len(script)
    quote: str | None = None
    while i < n:
        ch = script[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif ch == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch == ";":
            _add(out, script, start, i)
            start = i + 1
        i += 1
    _add(out, script, start, n)
    return out


def _add(out: list[Statement], script: str, start: int, end: int) -> None:
    text = script[start:end]
    if not strip_comments(text).strip():
        return
    lead = len(text) - len(text.lstrip())
    out.append(Statement(number=len(out) + 1, text=text.strip(), offset=start + lead))


def strip_comments(text: str) -> str:
    """The text without `--` line comments (outside quotes)."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_VAR = re.compile(r"\$\{(?:(hivevar|hiveconf|env|system|define):)?([^}${\s]+)\}")


@dataclass
class Substituted:
    """The statement after substitution, with a map from new offsets to original offsets."""

    text: str
    # (start in new text, end in new text, start in original text, end in original text)
    spans: list[tuple[int, int, int, int]]

    def original_offset(self, offset: int) -> int:
        shift = 0
        for new_start, new_end, orig_start, orig_end in self.spans:
            if offset < new_start:
                break
            if offset < new_end:
                return orig_start
            shift = orig_end - new_end
        return offset + shift


class Variables:
    """hivevar (-d/--define/--hivevar) and hiveconf (SET, --hiveconf) variables."""

    def __init__(
        self,
        hivevar: Mapping[str, str] | None = None,
        hiveconf: Mapping[str, str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.hivevar: dict[str, str] = dict(hivevar or {})
        # An owner's script on the server sees only owner_environ(), never the server's own.
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.hiveconf: dict[str, str] = dict(hiveconf or {})

    def lookup(self, namespace: str | None, name: str) -> str | None:
        if namespace in ("hivevar", "define"):
            return self.hivevar.get(name)
        if namespace == "hiveconf":
            return self.hiveconf.get(name)
        if namespace == "env":
            return self.environ.get(name)
        if namespace == "system":
            return {"user.name": self.environ.get("USER", "")}.get(name)
        value = self.hivevar.get(name)
        return value if value is not None else self.hiveconf.get(name)

    def substitute(self, text: str) -> Substituted:
        """Replace `${NAME}`, `${hivevar:NAME}`, `${hiveconf:NAME}`, `${env:NAME}`; unknown ones stay.

        Values may hold variables themselves (Hive resolves up to 40 levels); positions inside a
        replaced value map to the start of the `${...}` that produced it.
        """
        spans: list[tuple[int, int, int, int]] = []
        parts: list[str] = []
        pos = 0
        new_len = 0
        for m in _VAR.finditer(text):
            value = self.lookup(m.group(1), m.group(2))
            if value is None:
                continue
            for _ in range(40):
                nested = _VAR.sub(lambda n: self.lookup(n.group(1), n.group(2)) or n.group(0), value)
                if nested == value:
                    break
                value = nested
            parts.append(text[pos : m.start()])
            new_len += m.start() - pos
            spans.append((new_len, new_len + len(value), m.start(), m.end()))
            parts.append(value)
            new_len += len(value)
            pos = m.end()
        parts.append(text[pos:])
        return Substituted("".join(parts), spans)


def owner_environ() -> dict[str, str]:
    """What `${env:NAME}` may read in an owner's script: locale and time zone only (keys,
    database URLs and the rest of the server's environment stay unset, so they are not replaced)."""
    return {k: v for k, v in os.environ.items() if k in ("LANG", "LANGUAGE", "TZ") or k.startswith("LC_")}


_SET = re.compile(r"^\s*set(?:\s+(?P<body>.*))?$", re.IGNORECASE | re.DOTALL)


def parse_set(text: str) -> tuple[str, str | None] | None:
    """`SET k=v` -> (k, v); `SET k` -> (k, None); bare `SET` / `SET -v` -> ('', None); else None."""
    m = _SET.match(text)
    if not m:
        return None
    body = (m.group("body") or "").strip()
    if body in ("", "-v"):
        return "", None
    key, eq, value = body.partition("=")
    if not eq:
        return key.strip(), None
    return key.strip(), value.strip()


def unterminated(text: str) -> tuple[str, None, int]:
    """The message and offset of the string literal a statement leaves open (for where.error)."""
    quote: str | None = None
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote, start = ch, i
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        i += 1
    if quote is None:
        return "cannot read the statement (unbalanced quotes or an unknown character)", None, 0
    return f"unterminated string: the {quote} here is never closed", None, start
