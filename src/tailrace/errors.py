"""The one root error and the families callers make decisions on.

Messages say what was expected, what arrived and where (file, object id, field,
line/column); the structured fields carry the same facts for programs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TailraceError(Exception):
    """Root of every error tailrace raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(TailraceError):
    """Configuration (file, environment or flags) is invalid."""

    exit_code = 2


class UsageError(TailraceError):
    """A command was called with arguments it cannot take."""

    exit_code = 2


class NotFoundError(TailraceError, LookupError):
    """A named thing (pipeline, object, table, key) does not exist."""


class ConflictError(TailraceError):
    """The request conflicts with the current state (wrong status, duplicate, stale lease)."""


class StorageError(TailraceError):
    """The object store could not read or write."""


class Location:
    """Where a problem is: any of source file, object id, field, line, column."""

    __slots__ = ("column", "field", "line", "object_id", "source")

    def __init__(
        self,
        *,
        source: str | None = None,
        object_id: str | None = None,
        field: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.source = source
        self.object_id = object_id
        self.field = field
        self.line = line
        self.column = column

    def __str__(self) -> str:
        parts: list[str] = []
        if self.source:
            pos = self.source
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            parts.append(pos)
        elif self.line is not None:
            parts.append(f"line {self.line}" + (f", column {self.column}" if self.column is not None else ""))
        if self.object_id is not None:
            parts.append(f"object '{self.object_id}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        if self.column is not None and self.line is None and not self.source:
            parts.append(f"column {self.column}")
        return ", ".join(parts)


class LocatedError(TailraceError):
    """An error that knows where it happened; the location prefixes the message."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.location = location or Location()
        self.detail = message
        where = str(self.location)
        super().__init__(f"{where}: {message}" if where else message)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ' Did you mean X?' for the closest candidate, or ''."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f" Did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not close:
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)]
    return f" Did you mean '{close[0]}'?" if close else ""
