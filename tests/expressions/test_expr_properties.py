"""Properties: any text into parse_template/render fails only with a located TailraceError; and
round trips of the date functions and arithmetic agree with Python's own calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailrace.errors import TailraceError
from tailrace.expressions import ExpressionError, MappingScope, evaluate, parse_template, render

T = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)
SCOPE = MappingScope(
    {
        "a": 3,
        "b": 0.5,
        "s": "text",
        "n": "12",
        "d": T,
        "myList": ["one", "two"],
        "myDates": [T, T + timedelta(days=40)],
        "input": MappingScope({"directoryPath": "s3://in/#", "@id": "In"}),
        "@scheduledStartTime": T,
        "*myPassword": "p",
        "dt": "2011-05-24T17:10:00",
    }
)

SEEDS = [
    "#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}",
    "s3://b/#{input.directoryPath}/#{day(d)}",
    "select '#{@scheduledStartTime.format('YYYY-MM-dd')}' from t where x = '${v}'",
    "#{'this is ' + myList}",
    "#{1.0 / 2} #{2 ^ 2} #{1 / 2} #{a * n - b}",
    "#{plusMonths(makeDate(2011,1,31), 1)} #{inTimeZone(d, 'America/Los_Angeles').format('hh a z Z')}",
    "#{minusMinutes(firstOfMonth(sunday(midnight(dt))), 30)} #{*myPassword}",
    "#{myDates.format(\"EEEE d MMMM ''YY\")}",
    "#{format(plusPeriod(d, '1 day'), 'e E D w x')}",
]
PIECES = [
    "#{", "}", "'", '"', "(", ")", ",", ".", "@", "*", "^", "/", "-", "+", " ", "format", "day",
    "plusDays", "myList", "input", "99999999999999999999", "9223372036854775807", "1e308", "0",
    "'YYYY'", "'T'", "inTimeZone", "'Nowhere/Else'", "makeDate", "10000", "-1", "\n", "#", "{",
]  # fmt: skip


def _assert_fails_cleanly(exc: Exception) -> None:
    assert isinstance(exc, TailraceError), f"{type(exc).__name__}: {exc}"
    assert str(exc).strip()
    if isinstance(exc, ExpressionError):
        assert exc.column is None or exc.column >= 1


def _render(text: str) -> None:
    try:
        result = render(text, SCOPE)
    except Exception as exc:
        _assert_fails_cleanly(exc)
        return
    assert isinstance(result, str) or all(isinstance(r, str) for r in result)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(alphabet=st.sampled_from(list("#{}'\"()@*.,+-/^ 0123456789adsnbTxyz_\n\\")) | st.characters()))
def test_random_text_never_crashes(text: str) -> None:
    _render(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(PIECES) | st.characters())
        if action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)) :]
        else:
            text = text[:pos] + piece + text[pos + len(piece) :]
    return text


@FAST
@given(mutated())
def test_mutated_expressions_never_crash(text: str) -> None:
    _render(text)
    try:
        template = parse_template(text)
    except ExpressionError:
        return
    for expr in template.expressions:
        for path in expr.paths():
            assert path and all(isinstance(p, str) and p for p in path)
        for name, column in expr.functions():
            assert text[column - 1 : column - 1 + len(name)] == name


def test_seeds_render() -> None:
    for seed in SEEDS:
        assert render(seed, SCOPE)


dates = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(-5000, 5000))
def test_day_shifts_round_trip(d: datetime, n: int) -> None:
    scope = MappingScope({"d": d, "n": n})
    assert evaluate("plusDays(d, n)", scope) == d + timedelta(days=n)
    assert evaluate("minusWeeks(plusWeeks(d, n), n)", scope) == d
    assert evaluate("format(d, 'YYYY-MM-dd HH:mm:ss D')", scope) == d.strftime("%Y-%m-%d %H:%M:%S ") + str(
        d.timetuple().tm_yday
    )


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(-240, 240))
def test_month_shifts_clamp_to_the_month_end(d: datetime, n: int) -> None:
    shifted = evaluate("plusMonths(d, n)", MappingScope({"d": d, "n": n}))
    assert isinstance(shifted, datetime)
    year, month0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    assert (shifted.year, shifted.month) == (year, month0 + 1)
    assert shifted.day == d.day or (shifted.day < d.day and (shifted + timedelta(days=1)).day == 1)
    assert shifted.time() == d.time()


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9))
def test_integer_arithmetic_matches_java(x: int, y: int) -> None:
    scope = MappingScope({"x": x, "y": y})
    assert evaluate("x + y", scope) == x + y
    assert evaluate("x * y - y", scope) == x * y - y
    if y:
        q = evaluate("x / y", scope)
        assert isinstance(q, int)
        # Java: x == q*y + r with |r| < |y| and r taking the sign of x (truncation toward zero)
        r = x - q * y
        assert abs(r) < abs(y)
        assert r == 0 or (r > 0) == (x > 0)
