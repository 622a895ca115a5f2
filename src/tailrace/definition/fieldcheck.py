"""Checks of one field value against its spec: enumerations, numbers, periods, date-times.

A value holding `#{...}` is checked after substituting parameter values when the expression
reads only parameters; otherwise it can only be checked when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tailrace.definition.period import EXPECTED, parse_period
from tailrace.definition.problems import DefinitionError
from tailrace.definition.types import FieldSpec, Kind

_INTEGER = re.compile(r"^[+-]?\d+$")
ONDEMAND_PERIOD = "ONDEMAND_PERIOD"


def datetime_value(text: str) -> datetime | None:
    """A literal date-time (YYYY-MM-DDTHH:MM:SS) or None, as the expression language reads it."""
    from tailrace.expressions import parse_datetime_value

    try:
        value = parse_datetime_value(text)
    except Exception:  # the parser's own error types; any failure means "not a date-time"
        return None
    return value if isinstance(value, datetime) else None


def substitute(text: str, params: Mapping[str, Any]) -> str | None:
    """`text` with its expressions rendered, if they read nothing but parameters; else None."""
    if "#{" not in text:
        return text
    from tailrace.expressions import ExpressionError, MappingScope, parse_template, render

    try:
        template = parse_template(text)
        for expr in template.expressions:
            for path in expr.paths():
                if len(path) != 1 or _param(params, path[0]) is None:
                    return None
        scope_values = {}
        for expr in template.expressions:
            for path in expr.paths():
                found = _param(params, path[0])
                if found is not None:
                    scope_values[path[0]] = found
        return str(render(text, MappingScope(scope_values)))
    except (ExpressionError, KeyError, TypeError, ValueError):
        return None


def _reads_parameters_only(text: str) -> bool:
    from tailrace.expressions import ExpressionError, parse_template

    try:
        paths = [p for e in parse_template(text).expressions for p in e.paths()]
    except ExpressionError:
        return False
    return all(len(p) == 1 and re.match(r"^\*?my", p[0]) for p in paths)


def _param(params: Mapping[str, Any], name: str) -> Any:
    from tailrace.definition.params import lookup_parameter

    found = lookup_parameter(params, name)
    return found[1] if found else None


def value_problem(spec: FieldSpec, value: str) -> str | None:
    """Why a (substituted) string value does not fit the field, or None."""
    kind = spec.kind
    if kind == Kind.ENUM:
        if spec.canonical(value) is None:
            return f"expected one of {', '.join(spec.values)} (any case); found '{value}'"
    elif kind == Kind.INTEGER:
        if not _INTEGER.match(value.strip()):
            return f"expected a whole number; found '{value}'"
    elif kind == Kind.DOUBLE:
        try:
            float(value)
        except ValueError:
            return f"expected a number; found '{value}'"
    elif kind == Kind.BOOLEAN:
        if value.strip().lower() not in ("true", "false"):
            return f"expected 'true' or 'false'; found '{value}'"
    elif kind == Kind.PERIOD:
        return period_problem(spec, value)
    elif kind == Kind.DATETIME and datetime_value(value) is None:
        return (
            f"INVALID_FIELD_VALUE: '{spec.name}' value must be a literal datetime value "
            f"(YYYY-MM-DDTHH:MM:SS, UTC); found '{value}'"
        )
    return None


def period_problem(spec: FieldSpec, value: str) -> str | None:
    if spec.name == "period" and value.strip().upper() == ONDEMAND_PERIOD:
        return None
    try:
        p = parse_period(value)
    except DefinitionError as exc:
        return exc.detail
    if spec.min_minutes is not None and p.approx_minutes < spec.min_minutes:
        return f"expected a period of at least {_minutes(spec.min_minutes)}; found '{value}'"
    if spec.max_minutes is not None and p.approx_minutes > spec.max_minutes:
        return f"expected a period of at most 3 years; found '{value}'"
    return None


def _minutes(n: int) -> str:
    return f"{n} minutes" if n % 60 else f"{n // 60} hour{'s' if n != 60 else ''}"


def check_value(
    spec: FieldSpec,
    value: str,
    params: Mapping[str, Any],
    *,
    on_unchecked: Callable[[str], None] | None = None,
) -> str | None:
    """Check a value (substituting parameters); report expressions that cannot be checked yet."""
    if spec.kind in (Kind.STRING, Kind.REF):
        return None
    text = substitute(value, params)
    if text is None:
        if spec.kind == Kind.DATETIME and not _reads_parameters_only(value):
            return (
                f"INVALID_FIELD_VALUE: '{spec.name}' value must be a literal datetime value "
                f"(YYYY-MM-DDTHH:MM:SS, UTC); found the expression '{value}'"
            )
        if on_unchecked is not None:
            on_unchecked(value)
        return None
    problem = value_problem(spec, text)
    if problem and text != value:
        problem += f" (from '{value}')"
    return problem


__all__ = ["EXPECTED", "ONDEMAND_PERIOD", "check_value", "datetime_value", "substitute", "value_problem"]
