"""What running a Hive script returns, and the error it raises (any engine: see engines.abc)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tailrace.errors import LocatedError, Location


class HiveError(LocatedError):
    """A statement failed: names the script, statement number, line and column.

    `str(err)` reads `whatislog.q:9:6: statement 3: Table not found 'fluentlg'...`;
    `partial` holds the results of the statements that ran before it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        statement: int | None,
        line: int | None,
        column: int | None,
        partial: ScriptResult | None = None,
    ) -> None:
        self.source = source
        self.statement = statement
        self.line = line
        self.column = column
        self.partial = partial
        text = f"statement {statement}: {message}" if statement else message
        super().__init__(text, Location(source=source, line=line, column=column))
        self.reason = message


class ScriptInterrupted(HiveError):
    """The script was stopped from outside (interrupt() or its cancel hook) before it ended;
    `statement` is the one that was running or about to start."""


@dataclass(kw_only=True)
class Malformed:
    """Input problems seen by one statement (Hive reads them as NULLs and goes on)."""

    short_lines: int = 0
    """Lines with fewer fields than the table has columns."""
    bad_json: int = 0
    """json_tuple inputs that were not NULL and were not a JSON object."""
    dropped_lines: int = 0
    """Lines DuckDB could not read at all (not UTF-8): dropped, unlike Hive, which keeps bytes."""

    @property
    def total(self) -> int:
        return self.short_lines + self.bad_json + self.dropped_lines


@dataclass(kw_only=True)
class StatementResult:
    number: int
    kind: str
    """e.g. CREATE TABLE, INSERT OVERWRITE, INSERT INTO, SELECT, SET, DROP TABLE, ADD PARTITION."""
    line: int
    column: int
    table: str | None = None
    rows_written: int = 0
    seconds: float = 0.0
    columns: list[str] = field(default_factory=list)
    select_rows: list[tuple[str | None, ...]] = field(default_factory=list)
    """SELECT results as Hive prints them (None is NULL), in order."""
    message: str = ""
    malformed: Malformed = field(default_factory=Malformed)
    input_tables: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class ScriptResult:
    source: str
    statements: list[StatementResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(s.rows_written for s in self.statements)

    def _per_table(self, attr: str) -> int:
        # Two statements reading the same table see the same bad lines: count each table once,
        # at the largest number any statement saw.
        best: dict[str, int] = {}
        for s in self.statements:
            value = getattr(s.malformed, attr)
            key = ",".join(sorted(s.input_tables)) or f"#{s.number}"
            best[key] = max(best.get(key, 0), value)
        return sum(best.values())

    @property
    def malformed_lines(self) -> int:
        """Short lines (too few fields) in the input tables."""
        return self._per_table("short_lines")

    @property
    def dropped_lines(self) -> int:
        """Input lines that could not be decoded and were left out."""
        return self._per_table("dropped_lines")

    @property
    def malformed_json(self) -> int:
        """JSON values json_tuple could not read."""
        return self._per_table("bad_json")
