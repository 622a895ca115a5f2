"""Problems found in a definition, the report that collects them, and the error that carries it.

A report has the shape of PutPipelineDefinition's answer: errors and warnings grouped by object
id. Every problem names the object and field it is about and says what was expected and what
was found; `line`/`column` point into the source file when the loader knew them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tailrace.errors import LocatedError, Location, did_you_mean

ERROR = "error"
WARNING = "warning"

FILE_LEVEL_ID = "(file)"
"""The id used for problems that belong to no object (bad JSON, a misplaced top-level key)."""


def suggest(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'X'?' for the closest candidate, or ''."""
    hint = did_you_mean(word, candidates)
    return "; did you mean" + hint[len(" Did you mean") :] if hint else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    severity: str
    """`error` (the definition is refused) or `warning` (accepted, but worth a look)."""
    object_id: str | None
    field: str | None
    message: str
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def where(self) -> str:
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")

    def location(self, source: str | None = None) -> Location:
        return Location(
            source=source, object_id=self.object_id, field=self.field, line=self.line, column=self.column
        )

    def __str__(self) -> str:
        parts = [self.severity.upper(), self.object_id or FILE_LEVEL_ID]
        if self.field:
            parts.append(self.field)
        text = "  ".join(parts) + "  " + self.message
        return f"{text} ({self.where})" if self.line is not None else text


def error(object_id: str | None, field_name: str | None, message: str, **pos: Any) -> Problem:
    return Problem(severity=ERROR, object_id=object_id, field=field_name, message=message, **pos)


def warning(object_id: str | None, field_name: str | None, message: str, **pos: Any) -> Problem:
    return Problem(severity=WARNING, object_id=object_id, field=field_name, message=message, **pos)


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    problems: tuple[Problem, ...] = ()
    source: str | None = None
    kind: str = "definition"
    """What was validated: `definition`, `parameters` (a parameters-only file) or `values`."""
    counts: dict[str, int] = field(default_factory=dict)
    """Objects, parameters and values seen, for summaries."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def errored(self) -> bool:
        return any(p.is_error for p in self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def to_aws(self) -> dict[str, Any]:
        """PutPipelineDefinition's answer: errored, validationErrors, validationWarnings."""
        return {
            "errored": self.errored,
            "validationErrors": _grouped(self.errors, "errors"),
            "validationWarnings": _grouped(self.warnings, "warnings"),
        }

    def raise_for_errors(self) -> ValidationReport:
        """Raise DefinitionError listing every error; return self when there is none."""
        if self.errored:
            raise DefinitionError(self)
        return self

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"


def _grouped(problems: Iterable[Problem], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for p in problems:
        groups.setdefault(p.object_id or FILE_LEVEL_ID, []).append(aws_message(p))
    return [{"id": oid, key: msgs} for oid, msgs in groups.items()]


def aws_message(p: Problem) -> str:
    """The message as one line of validationErrors (the field is already named in the text)."""
    return f"{p.message} ({p.where})" if p.line is not None else p.message


class DefinitionError(LocatedError):
    """A definition (or parameter values) was refused; `.report` lists every problem.

    Built from a report (`DefinitionError(report)`) or from one message and its location.
    """

    def __init__(
        self,
        message: str | ValidationReport,
        location: Location | None = None,
        *,
        report: ValidationReport | None = None,
    ) -> None:
        if isinstance(message, ValidationReport):
            report = message
            errors = report.errors or list(report.problems)
            first = errors[0] if errors else None
            location = location or (
                first.location(report.source) if first else Location(source=report.source)
            )
            message = _report_message(report, errors)
        elif report is None:
            loc = location or Location()
            report = ValidationReport(
                problems=(error(loc.object_id, loc.field, message, line=loc.line, column=loc.column),),
                source=loc.source,
            )
        self.report = report
        super().__init__(message, location)
        if isinstance(self.report, ValidationReport) and len(self.report.errors) > 1:
            # Several errors: the location of the first is misleading as a prefix.
            self.message = message
            self.args = (message,)


def _report_message(report: ValidationReport, errors: list[Problem]) -> str:
    if len(errors) == 1:
        p = errors[0]
        return p.message + (f" ({p.where})" if p.line is not None else "")
    head = f"{len(errors)} errors in {report.source or 'the definition'}:"
    lines = [head] + [f"  {p}" for p in errors[:20]]
    if len(errors) > 20:
        lines.append(f"  ... and {len(errors) - 20} more")
    return "\n".join(lines)
