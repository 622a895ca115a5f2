"""Evaluating expressions against a Scope, and rendering field templates.

Operators follow the service (Java) rules:
- `+` concatenates when either side is a String (the other side is rendered as text);
  otherwise it adds numbers. A DateTime only takes part in concatenation: shifting one is done
  with plusDays(...) and friends, and `DateTime + 1` is an error saying so.
- `- * /` on two Integers give an Integer (`/` truncates toward zero, like Java); with a Double
  either side, a Double. `^` always gives a Double. Strings of digits (parameter values) count as
  numbers for `- * / ^`. Integer division by zero is an error; Double division gives Infinity/NaN.
- Lists: an operator, function or field read applied to a list is applied to each item (to every
  combination when several operands are lists), so `'this is ' + myList` is one value per item.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from tailrace.errors import did_you_mean
from tailrace.expressions.error import ExpressionError
from tailrace.expressions.functions import FUNCTIONS, ArgumentError
from tailrace.expressions.syntax import (
    Binary,
    Call,
    Expr,
    Literal,
    Member,
    Node,
    Path,
    Template,
    Unary,
    parse_expression,
    parse_template,
    walk_nodes,
)
from tailrace.expressions.values import (
    LONG_MAX,
    LONG_MIN,
    Scope,
    Value,
    describe,
    flatten,
    is_scope,
    to_text,
    type_name,
)

_NUMBER_TEXT = re.compile(r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tailrace_expr_deadline", default=None
)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Bound the evaluation time of every expression evaluated inside (in this context): past
    it, evaluation stops with an ExpressionError. For callers that evaluate what a client sent."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


RUNTIME_SECONDS = 2.0
"""The time limit of an evaluation no caller bounded (fields rendered while pipelines run): fields
that refer to each other in a fan-out would otherwise hold a worker or the scheduler forever.
Short, because some are evaluated inside a metadata transaction (a pipelineLogUri when a task is
claimed, an SnsAlarm's message): a real field takes milliseconds."""
MAX_VALUES = 10_000
"""The most values one expression or field may yield: a list field referred to k times yields
len**k combinations, which would exhaust memory long before any time limit."""
MAX_TEXT = 16 * 1024 * 1024
"""The longest text a field may render to (a definition's own limit): fields doubling each other's
text would exhaust memory within the time limit."""


@contextlib.contextmanager
def _bounded() -> Iterator[None]:
    """The callers' time limit, or RUNTIME_SECONDS when they set none."""
    if _DEADLINE.get() is not None:
        yield
        return
    with time_limit(RUNTIME_SECONDS):
        yield


def _too_many(count: int, text: str, column: int = 1) -> ExpressionError:
    return ExpressionError(
        f"the expression yields {count} values; at most {MAX_VALUES} are allowed (a list referred to "
        "several times yields every combination of its items)",
        column=column,
        text=text,
    )


def _check_deadline(text: str) -> None:
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise ExpressionError(
            "evaluation took longer than its time limit and was stopped", column=1, text=text
        )


class _Evaluator:
    def __init__(self, scope: Scope, text: str) -> None:
        self.scope = scope
        self.text = text
        self.steps = 0

    def fail(self, message: str, pos: int, suggestion: str | None = None) -> ExpressionError:
        return ExpressionError(message, column=pos + 1, text=self.text, suggestion=suggestion)

    def eval(self, node: Node) -> Value:
        self.steps += 1
        if self.steps & 255 == 0:
            _check_deadline(self.text)
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Path):
            return self.path(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Member):
            target = self.eval(node.target)
            return _each((target,), lambda t: self.member(t, node.name, node.pos, None))
        if isinstance(node, Unary):
            operand = self.eval(node.operand)
            return _each((operand,), lambda v: self.negate(node, v))
        left = self.eval(node.left)
        right = self.eval(node.right)
        return _each((left, right), lambda a, b: self.binary(node, a, b))

    # ------------------------------------------------------------ names

    def path(self, node: Path) -> Value:
        (first, pos), rest = node.segments[0], node.segments[1:]
        value = self.lookup(self.scope, first, pos, None)
        for i, (name, seg_pos) in enumerate(rest):
            owner = ".".join(node.names[: i + 1])
            value = _each((value,), lambda v, n=name, p=seg_pos, o=owner: self.member(v, n, p, o))
        return value

    def member(self, value: Value, name: str, pos: int, owner: str | None) -> Value:
        if is_scope(value):
            return self.lookup(value, name, pos, owner)
        hint = ""
        if name in FUNCTIONS:
            hint = f"; to call the function write {name}(...) or .{name}()"
        where = f"'{owner}'" if owner else "the value"
        raise self.fail(
            f"cannot read '{name}' from {where}: it is a {type_name(value)}, not an object{hint}", pos
        )

    def lookup(self, scope: Scope, name: str, pos: int, owner: str | None) -> Value:
        try:
            value = scope.lookup(name)
        except KeyError:
            raise self.unknown_name(scope, name, pos, owner) from None
        except ExpressionError as inner:
            # The scope failed rendering the field's own expression: keep that message, point here.
            shown = f"{owner}.{name}" if owner else name
            raise self.fail(f"while evaluating '{shown}': {inner}", pos) from inner
        if value is None:
            shown = f"{owner}.{name}" if owner else name
            raise self.fail(f"'{shown}' has no value", pos)
        return value

    def unknown_name(self, scope: Scope, name: str, pos: int, owner: str | None) -> ExpressionError:
        where = f" in '{owner}'" if owner else ""
        if name in FUNCTIONS:
            return self.fail(
                f"unknown name '{name}'{where}: {name} is a function; call it as {name}(...)", pos
            )
        names = getattr(scope, "names", None)
        hint = did_you_mean(name, names()) if callable(names) else ""
        suggestion = hint.split("'")[1] if hint else None
        return self.fail(f"unknown name '{name}'{where}.{hint}".rstrip("."), pos, suggestion)

    # ------------------------------------------------------------ calls

    def call(self, node: Call) -> Value:
        problem = _call_problem(node, self.text)
        if problem is not None:
            raise problem
        spec = FUNCTIONS[node.name]
        args = [self.eval(a) for a in node.args]

        def apply(*values: Value) -> Value:
            try:
                return spec.apply(values)
            except ArgumentError as exc:
                raise self.fail(exc.detail, node.args[exc.index].pos) from None
            except ExpressionError as exc:
                raise self.fail(exc.detail, node.pos) from None

        return _each(args, apply)

    # ------------------------------------------------------------ operators

    def negate(self, node: Unary, value: Value) -> Value:
        number = _number(value)
        if number is None:
            raise self.fail(f"'{node.op}' needs a number; found {describe(value)}", node.pos)
        if node.op != "-":
            return number
        # Only integers are 64-bit longs; a negated double stays a double (no overflow check).
        return self.long(-number, node.pos) if isinstance(number, int) else -number

    def binary(self, node: Binary, a: Value, b: Value) -> Value:
        op = node.op
        if op == "+" and (isinstance(a, str) or isinstance(b, str)):
            try:
                return to_text(a) + to_text(b)
            except ExpressionError as exc:
                raise self.fail(f"cannot concatenate: {exc.detail}", node.pos) from None
        if op == "+":
            x, y = _plain_number(a), _plain_number(b)
        else:
            x, y = _number(a), _number(b)
        if x is None or y is None:
            raise self.fail(self.operand_message(op, a, b), node.pos)
        if op == "^":
            return _power(float(x), float(y))
        if isinstance(x, int) and isinstance(y, int):
            if op == "/":
                if y == 0:
                    raise self.fail("division by zero (both sides are Integers)", node.pos)
                q = abs(x) // abs(y)
                return self.long(q if (x >= 0) == (y >= 0) else -q, node.pos)
            return self.long(x + y if op == "+" else x - y if op == "-" else x * y, node.pos)
        fx, fy = float(x), float(y)
        if op == "/":
            return _divide(fx, fy)
        return fx + fy if op == "+" else fx - fy if op == "-" else fx * fy

    def operand_message(self, op: str, a: Value, b: Value) -> str:
        verb = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "^": "raise"}[op]
        message = f"cannot {verb} {describe(a)} and {describe(b)} with '{op}'"
        if isinstance(a, datetime) or isinstance(b, datetime):
            message += (
                "; shift a DateTime with plusMinutes/plusHours/plusDays/plusWeeks/plusMonths/plusYears "
                "(or minus...), e.g. plusDays(@scheduledStartTime, 1)"
            )
        elif op == "+":
            message += "; '+' adds numbers, or concatenates when one side is a String"
        else:
            message += "; it needs numbers"
        return message

    def long(self, value: int, pos: int) -> int:
        if not LONG_MIN <= value <= LONG_MAX:
            raise self.fail("integer overflow: the result does not fit in 64 bits", pos)
        return value


def _plain_number(v: Value) -> int | float | None:
    if isinstance(v, bool):
        return None
    return v if isinstance(v, int | float) else None


def _number(v: Value) -> int | float | None:
    if isinstance(v, str) and _NUMBER_TEXT.fullmatch(v):
        text = v.strip()
        if re.fullmatch(r"[+-]?[0-9]{1,19}", text):
            n = int(text)
            return n if LONG_MIN <= n <= LONG_MAX else float(n)
        return float(text)
    return _plain_number(v)


def _power(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf if x > 0 or (float(y).is_integer() and int(y) % 2 == 0) else -math.inf
    except ValueError:  # 0 ^ negative is Infinity in Java; a negative base ^ fraction is NaN
        return math.inf if x == 0 else math.nan


def _divide(x: float, y: float) -> float:
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _each(args: Sequence[Value], fn: Callable[..., Value]) -> Value:
    """fn over the arguments; when some are lists, over every combination of their items."""
    if not any(isinstance(a, list) for a in args):
        return fn(*args)
    pools = [list(flatten(a)) if isinstance(a, list) else [a] for a in args]
    if math.prod(len(p) for p in pools) > MAX_VALUES:
        raise _too_many(math.prod(len(p) for p in pools), "")
    out: list[Value] = []
    for combo in itertools.product(*pools):
        result = fn(*combo)
        out.extend(flatten(result))
        if len(out) > MAX_VALUES:
            raise _too_many(len(out), "")
    return out


def _run(expr: Expr, scope: Scope, text: str) -> Value:
    _check_deadline(text)  # fields that refer to fields: every nested evaluation checks too
    try:
        return _Evaluator(scope, text).eval(expr.node)
    except RecursionError:
        raise ExpressionError(
            "evaluation went too deep (does a field refer to itself?)", column=expr.column, text=text
        ) from None


def evaluate(expression: str, scope: Scope) -> Value:
    """The value of one expression (text without `#{ }`); columns count from its start."""
    with _bounded():
        return _run(parse_expression(expression), scope, expression)


def _texts(value: Value, expr: Expr, text: str) -> str | list[str]:
    try:
        if isinstance(value, list):
            return [to_text(v) for v in flatten(value)]
        return to_text(value)
    except ExpressionError as exc:
        raise ExpressionError(f"'{expr.text.strip()}': {exc.detail}", column=expr.column, text=text) from None


def render(template: Template | str, scope: Scope) -> str | list[str]:
    """The field text with every `#{...}` replaced by its value.

    A list when any expression yields a list: one value per item (per combination of items when
    several expressions yield lists), each with the rest of the text around it.
    """
    t = parse_template(template) if isinstance(template, str) else template
    if t.is_constant:
        return t.text
    pieces: list[str | list[str]] = []
    with _bounded():
        for part in t.parts:
            if isinstance(part, str):
                pieces.append(part)
            else:
                pieces.append(_texts(_run(part, scope, t.text), part, t.text))
    pools = [p if isinstance(p, list) else [p] for p in pieces]
    count = math.prod(len(p) for p in pools)
    if count > MAX_VALUES:
        raise _too_many(count, t.text)
    # Each combination's length is the sum of its pieces' lengths: the longest is checked first.
    longest = sum(max((len(x) for x in p), default=0) for p in pools)
    if longest > MAX_TEXT:
        raise ExpressionError(
            f"the field's text would be {longest} characters long; at most {MAX_TEXT} are allowed",
            column=1,
            text=t.text,
        )
    if all(isinstance(p, str) for p in pieces):
        return "".join(p[0] for p in pools)
    return ["".join(combo) for combo in itertools.product(*pools)]


def render_values(values: Sequence[str], scope: Scope) -> list[str]:
    """A multi-valued field (several strings) rendered and flattened into one list of values.

    This is the DG's `[#{myList1}, #{myList2}]` with lists [1,2] and [3,4]: `[1,2,3,4]`.
    """
    out: list[str] = []
    for value in values:
        rendered = render(value, scope)
        out.extend(rendered if isinstance(rendered, list) else [rendered])
    return out


def _call_problem(node: Call, text: str) -> ExpressionError | None:
    spec = FUNCTIONS.get(node.name)
    if spec is None:
        hint = did_you_mean(node.name, FUNCTIONS)
        return ExpressionError(
            f"unknown function '{node.name}'.{hint}".rstrip("."),
            column=node.pos + 1,
            text=text,
            suggestion=hint.split("'")[1] if hint else None,
        )
    if len(node.args) != spec.arity:
        extra = " (the value before the dot is the first)" if node.method else ""
        return ExpressionError(
            f"{spec.name}() takes {spec.arity} argument{'s' if spec.arity != 1 else ''}{extra}; "
            f"found {len(node.args)}. Signature: {spec.signature}",
            column=node.pos + 1,
            text=text,
        )
    return None


def check(template: Template | str) -> list[ExpressionError]:
    """Problems found without evaluating: unknown functions and wrong argument counts."""
    t = parse_template(template) if isinstance(template, str) else template
    found = (
        _call_problem(node, t.text)
        for expr in t.expressions
        for node in walk_nodes(expr.node)
        if isinstance(node, Call)
    )
    return [p for p in found if p is not None]
