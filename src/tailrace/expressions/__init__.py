"""The AWS Data Pipeline expression language: `#{...}` in field text.

    parse_template(text) -> Template      render(template, scope) -> str | list[str]
    evaluate(expression, scope) -> Value  to_text(value) -> str
    FUNCTIONS: name -> FunctionSpec       parse_datetime_value(text) -> datetime | None

Layer 1: imports only the base layer and the standard library.
"""

from tailrace.expressions.error import ExpressionError
from tailrace.expressions.evaluator import check, evaluate, render, render_values, time_limit
from tailrace.expressions.functions import FUNCTIONS, FunctionSpec
from tailrace.expressions.jodaformat import format_datetime
from tailrace.expressions.syntax import Expr, Template, parse_expression, parse_template
from tailrace.expressions.values import (
    MappingScope,
    Scope,
    Value,
    double_text,
    parse_datetime_value,
    to_text,
    type_name,
)

__all__ = [
    "FUNCTIONS",
    "Expr",
    "ExpressionError",
    "FunctionSpec",
    "MappingScope",
    "Scope",
    "Template",
    "Value",
    "check",
    "double_text",
    "evaluate",
    "format_datetime",
    "parse_datetime_value",
    "parse_expression",
    "parse_template",
    "render",
    "render_values",
    "time_limit",
    "to_text",
    "type_name",
]
