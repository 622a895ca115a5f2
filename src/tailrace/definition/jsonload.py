"""A JSON reader that keeps positions and forgives what published definitions get wrong.

Strict JSON parses as `json.loads` would. Three departures seen in published AWS samples are
accepted with a warning that names the line and column: raw control characters (newlines,
tabs) inside strings, trailing commas, and repeated keys (the last one wins, as with the AWS
CLI, which parses with `json.loads`). Anything else is a syntax error with line and column.

Objects come back as `JObject` (a dict that knows where it starts and ends and where each key
is), arrays as `JArray`, numbers as `JNumber` (their source text), the rest as Python values.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

from tailrace.definition.problems import DefinitionError
from tailrace.errors import Location

MAX_DEPTH = 200


class JObject(dict):
    """A JSON object with its span (character offsets) and the offset of each key."""

    start: int = 0
    end: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_offsets: dict[str, int] = {}


class JArray(list):
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class JNumber:
    """A JSON number, kept as written (definitions want strings; see the loader)."""

    text: str

    @property
    def value(self) -> int | float:
        try:
            return int(self.text)
        except ValueError:
            return float(self.text)


@dataclass(frozen=True, slots=True)
class JsonWarning:
    offset: int
    message: str


@dataclass
class JsonDocument:
    value: Any
    text: str
    source: str | None = None
    warnings: list[JsonWarning] = field(default_factory=list)
    _newlines: list[int] | None = None

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), both 1-based, of a character offset."""
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_left(self._newlines, offset)
        line_start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - line_start + 1


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_CONTROL_NAMES = {"\n": "newline", "\r": "carriage return", "\t": "tab"}
_WS = " \t\n\r"
_PLAIN_RUN = re.compile(r'[^"\\\x00-\x1f]*')


class _Parser:
    def __init__(self, text: str, source: str | None) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.depth = 0
        self.warnings: list[JsonWarning] = []
        self.doc = JsonDocument(value=None, text=text, source=source)

    def fail(self, message: str, offset: int | None = None) -> DefinitionError:
        line, column = self.doc.position(self.pos if offset is None else offset)
        return DefinitionError(
            f"not valid JSON: {message}", Location(source=self.source, line=line, column=column)
        )

    def found(self) -> str:
        if self.pos >= len(self.text):
            return "the end of the file"
        return repr(self.text[self.pos])

    def skip_ws(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos] in _WS:
            self.pos += 1

    def parse(self) -> JsonDocument:
        if self.text.startswith("\ufeff"):
            self.pos = 1
        self.skip_ws()
        value = self.value()
        self.skip_ws()
        if self.pos < len(self.text):
            raise self.fail(
                f"expected the end of the document after the top-level value; found {self.found()}"
            )
        self.doc.value = value
        self.doc.warnings = self.warnings
        return self.doc

    def value(self) -> Any:
        if self.pos >= len(self.text):
            raise self.fail("expected a value; found the end of the file")
        ch = self.text[self.pos]
        if ch == "{":
            return self.obj()
        if ch == "[":
            return self.arr()
        if ch == '"':
            return self.string()
        if ch == "-" or ch.isdigit():
            return self.number()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return val
        raise self.fail(
            f"expected a value (object, array, string, number, true, false or null); found {self.found()}"
        )

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")

    def obj(self) -> JObject:
        self.enter()
        out = JObject()
        out.start = self.pos
        self.pos += 1
        self.skip_ws()
        if self.peek() == "}":
            self.pos += 1
            out.end = self.pos
            self.depth -= 1
            return out
        while True:
            self.skip_ws()
            if self.peek() != '"':
                raise self.fail(f"expected a quoted key; found {self.found()}")
            key_at = self.pos
            key = self.string()
            self.skip_ws()
            if self.peek() != ":":
                raise self.fail(f"expected ':' after the key {key!r}; found {self.found()}")
            self.pos += 1
            self.skip_ws()
            val = self.value()
            if key in out:
                self.warnings.append(
                    JsonWarning(
                        key_at,
                        f"the key '{key}' appears more than once in this object; only the last value is "
                        "kept (as the AWS CLI does); write several values as an array",
                    )
                )
                del out[key]
            out[key] = val
            out.key_offsets[key] = key_at
            if self.closed("}", f"the value of {key!r}"):
                break
        out.end = self.pos
        self.depth -= 1
        return out

    def arr(self) -> JArray:
        self.enter()
        out = JArray()
        out.start = self.pos
        self.pos += 1
        self.skip_ws()
        if self.peek() == "]":
            self.pos += 1
            out.end = self.pos
            self.depth -= 1
            return out
        while True:
            self.skip_ws()
            out.append(self.value())
            if self.closed("]", "an array item"):
                break
        out.end = self.pos
        self.depth -= 1
        return out

    def closed(self, close: str, after: str) -> bool:
        """After an item of an object or array: True when `close` ends it (consumed; a trailing
        comma before it is warned about), False after a comma with another item to come."""
        self.skip_ws()
        ch = self.peek()
        if ch == close:
            self.pos += 1
            return True
        if ch != ",":
            raise self.fail(f"expected ',' or '{close}' after {after}; found {self.found()}")
        comma = self.pos
        self.pos += 1
        self.skip_ws()
        if self.peek() == close:
            self.warnings.append(JsonWarning(comma, f"trailing comma before '{close}' (not allowed in JSON)"))
            self.pos += 1
            return True
        return False

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def string(self) -> str:
        start = self.pos
        self.pos += 1
        text, n = self.text, len(self.text)
        chunks: list[str] = []
        raw_seen: set[str] = set()
        while True:
            j = _PLAIN_RUN.match(text, self.pos).end()  # type: ignore[union-attr]
            chunks.append(text[self.pos : j])
            self.pos = j
            if j >= n:
                raise self.fail("a string is not closed before the end of the file", start)
            ch = text[j]
            if ch == '"':
                self.pos += 1
                return "".join(chunks)
            if ch == "\\":
                chunks.append(self.escape())
                continue
            # A raw control character: JSON forbids it, published samples have it.
            name = _CONTROL_NAMES.get(ch, f"control character U+{ord(ch):04X}")
            if name not in raw_seen:
                raw_seen.add(name)
                self.warnings.append(
                    JsonWarning(j, f"raw {name} inside a string (JSON needs it escaped); kept as written")
                )
            chunks.append(ch)
            self.pos += 1

    def escape(self) -> str:
        at = self.pos
        self.pos += 1
        ch = self.peek()
        if ch in _ESCAPES:
            self.pos += 1
            return _ESCAPES[ch]
        if ch == "u":
            code = self._hex4(at)
            if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
                save = self.pos
                self.pos += 1
                low = self._hex4(save)
                if 0xDC00 <= low < 0xE000:
                    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
                self.pos = save
            return chr(code)
        raise self.fail(f"unknown escape '\\{ch}' in a string", at)

    def _hex4(self, at: int) -> int:
        digits = self.text[self.pos + 1 : self.pos + 5]
        if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.fail("'\\u' must be followed by four hex digits", at)
        self.pos += 5
        return int(digits, 16)

    def number(self) -> JNumber:
        start = self.pos
        text, n = self.text, len(self.text)
        j = start
        if j < n and text[j] == "-":
            j += 1
        if j < n and text[j] == "0":
            j += 1
        elif j < n and text[j].isdigit():
            while j < n and text[j].isdigit():
                j += 1
        else:
            raise self.fail(f"expected a digit in a number; found {text[j : j + 1]!r}", j)
        if j < n and text[j] == ".":
            j += 1
            if not (j < n and text[j].isdigit()):
                raise self.fail("expected a digit after the decimal point", j)
            while j < n and text[j].isdigit():
                j += 1
        if j < n and text[j] in "eE":
            j += 1
            if j < n and text[j] in "+-":
                j += 1
            if not (j < n and text[j].isdigit()):
                raise self.fail("expected a digit in the exponent", j)
            while j < n and text[j].isdigit():
                j += 1
        self.pos = j
        return JNumber(text[start:j])


def parse_json(text: str, *, source: str | None = None) -> JsonDocument:
    """Parse text; raise DefinitionError (with line and column) if it is not JSON even leniently."""
    if not isinstance(text, str):
        raise DefinitionError(f"expected JSON text; found {type(text).__name__}", Location(source=source))
    return _Parser(text, source).parse()


def plain(value: Any) -> Any:
    """A parsed value as plain Python (numbers as int/float) for code that wants `json.loads` output."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, JNumber):
        return value.value
    return value
