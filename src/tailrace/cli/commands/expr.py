"""`tailrace expr`: evaluate one expression from the command line (the service's EvaluateExpression)."""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tailrace.errors import UsageError

if TYPE_CHECKING:
    from tailrace.expressions import MappingScope, Value

EXAMPLES = """\
examples:
  tailrace expr '1.0 / 2'                                    # .5
  tailrace expr "format(makeDate(2011,5,24), 'EEEE d MMMM YYYY')"
  tailrace expr 'plusDays(@scheduledStartTime, 1)' --scheduled-start 2011-05-24T17:10:00
  tailrace expr "s3://logs/#{format(@scheduledStartTime,'YYYY-MM-dd')}/" --scheduled-start 2011-05-24T17:10:00
  tailrace expr "'this is ' + myList" --set myList=one --set myList=two
  tailrace expr "day(myDateTime)" --set myDateTime=2011-05-24T17:10:00 --output json

EXPR is a bare expression, or a field template when it contains #{...} (then the text around the
expressions is kept). A --set value written as a date-time (2011-05-24T17:10:00) is a DateTime;
a name set more than once is a list; a value holding #{...} is evaluated when it is read.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "expr",
        help="evaluate a Data Pipeline expression (#{...}) and print the result",
        description="Evaluate one expression of the Data Pipeline expression language, as the service's "
        "EvaluateExpression does, against the names given with --set and the scheduled times.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("expression", metavar="EXPR", help="an expression, or text containing #{...}")
    p.add_argument("--scheduled-start", metavar="TIME", help="@scheduledStartTime (YYYY-MM-DDTHH:MM:SS, UTC)")
    p.add_argument("--scheduled-end", metavar="TIME", help="@scheduledEndTime (YYYY-MM-DDTHH:MM:SS, UTC)")
    p.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a name the expression can read (myParam, *myPassword, @pipelineId, ...); repeat it for a list",
    )
    p.add_argument("--output", choices=["text", "json"], default="text", help="output format (default text)")
    p.set_defaults(func=_run)


@functools.cache
def _cli_scope_class() -> type[MappingScope]:
    """_CliScope, defined on first use so that importing this module does not load tailrace.expressions."""
    from tailrace.expressions import MappingScope, render

    class _CliScope(MappingScope):
        """--set values; a value holding #{...} is rendered when read, as an object's field would be."""

        def lookup(self, name: str) -> Value:
            value = super().lookup(name)
            if isinstance(value, str) and "#{" in value:
                rendered = render(value, self)
                return rendered if isinstance(rendered, str) else [*rendered]
            return value

    return _CliScope


def _time(flag: str, text: str) -> datetime:
    from tailrace.expressions import parse_datetime_value

    value = parse_datetime_value(text)
    if value is None:
        raise UsageError(f"{flag} must be a date-time like 2011-05-24T17:10:00; found {text!r}")
    return value


def build_scope(args: argparse.Namespace) -> MappingScope:
    from tailrace.expressions import parse_datetime_value

    values: dict[str, Value] = {}
    for item in args.assignments:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--set takes NAME=VALUE; found {item!r}")
        parsed = parse_datetime_value(raw)
        value: Value = parsed if parsed is not None else raw
        if name in values:
            previous = values[name]
            values[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            values[name] = value
    if args.scheduled_start:
        values["@scheduledStartTime"] = _time("--scheduled-start", args.scheduled_start)
    if args.scheduled_end:
        values["@scheduledEndTime"] = _time("--scheduled-end", args.scheduled_end)
    return _cli_scope_class()(values)


def _json_value(value: Value) -> Any:
    from tailrace.expressions import to_text

    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else to_text(value)
    return to_text(value)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.expressions import ExpressionError, evaluate, render, to_text, type_name

    scope = build_scope(args)
    text = args.expression
    try:
        result: Value
        if "#{" in text:
            rendered = render(text, scope)
            result = rendered if isinstance(rendered, str) else [*rendered]  # a list[Value]
        else:
            result = evaluate(text, scope)
        shown = [to_text(v) for v in result] if isinstance(result, list) else to_text(result)
    except ExpressionError as exc:
        print(f"tailrace: error: {exc}", file=sys.stderr)
        caret = exc.caret()
        if caret:
            print(caret, file=sys.stderr)
        if "unknown name '@scheduled" in exc.detail:
            print(
                "hint: give --scheduled-start (and --scheduled-end) to set the scheduled times",
                file=sys.stderr,
            )
        return 1
    if args.output == "json":
        doc = {
            "expression": text,
            "type": type_name(result),
            "value": _json_value(result),
            "evaluatedExpression": shown,
        }
        print(json.dumps(doc, indent=2))
    elif isinstance(shown, list):
        for line in shown:
            print(line)
    else:
        print(shown)
    return 0
