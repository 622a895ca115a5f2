"""evaluate / render: operators, rendering of values, functions, lists, scopes and errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tailrace.errors import TailraceError
from tailrace.expressions import (
    FUNCTIONS,
    ExpressionError,
    MappingScope,
    Scope,
    check,
    evaluate,
    parse_datetime_value,
    render,
    to_text,
)

T = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)
SCOPE = MappingScope(
    {
        "myDateTime": T,
        "@scheduledStartTime": T,
        "@scheduledEndTime": T + timedelta(hours=1),
        "myText": "2011-05-24T17:10:00",
        "myCount": "5",
        "myName": "logs",
        "*myPassword": "s3cret",
        "myList": ["one", "two"],
        "myNumbers": [1, 2],
        "myDates": [T, T + timedelta(days=1)],
    }
)


def ev(text: str) -> object:
    return evaluate(text, SCOPE)


def rendered(text: str) -> str | list[str]:
    return render("#{" + text + "}", SCOPE)


# ------------------------------------------------------------------ arithmetic and rendering


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("7 / 2", "3"),
        ("-7 / 2", "-3"),  # Java truncates toward zero
        ("7 / -2", "-3"),
        ("7.0 / 2", "3.5"),
        ("7 / 2.0", "3.5"),
        ("1 / 4.0", ".25"),
        ("-1 / 4.0", "-.25"),
        ("0.1 + 0.2", ".30000000000000004"),
        ("1.5 * 2", "3.0"),
        ("2 ^ 3", "8.0"),
        ("2 ^ -1", ".5"),
        ("2 ^ 0.5", "1.4142135623730951"),
        ("2 ^ 3 ^ 2", "512.0"),
        ("-2 ^ 2", "-4.0"),
        ("10 ^ 20", "100000000000000000000.0"),
        ("1 / 10000000.0", ".0000001"),
        ("1.0 / 0", "Infinity"),
        ("-1.0 / 0", "-Infinity"),
        ("0.0 / 0", "NaN"),
        ("10 ^ 400", "Infinity"),
        ("0 ^ -1", "Infinity"),
        ("(1 + 2) * 3", "9"),
        ("1 + 2 * 3", "7"),
        ("10 - 2 - 3", "5"),
        ("-(3)", "-3"),
        ("+3", "3"),
        ("9223372036854775807", "9223372036854775807"),
        ("myCount * 2", "10"),  # digit strings count as numbers for - * / ^
        ("myCount - 1", "4"),
        ("myCount + 1", "51"),  # but '+' with a String concatenates
        ("1 + 2 + 'x'", "3x"),
        ("'x' + 1 + 2", "x12"),
        ("'v' + 1.0 / 2", "v.5"),
        ("'at ' + myDateTime", "at 2011-05-24T17:10:00"),
        ("myName + '-' + day(myDateTime)", "logs-24"),
        ("*myPassword", "s3cret"),
    ],
)
def test_operators(expression: str, expected: str) -> None:
    assert rendered(expression) == expected


def test_types_of_results() -> None:
    assert ev("1 / 2") == 0 and isinstance(ev("1 / 2"), int)
    assert isinstance(ev("2 ^ 2"), float)
    assert isinstance(ev("1 + 1.0"), float)
    assert ev("plusDays(myDateTime, 1)") == T + timedelta(days=1)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, ".5"),
        (4.0, "4.0"),
        (-0.0, "-.0"),
        (123.456, "123.456"),
        (1e-7, ".0000001"),
        (1e22, "10000000000000000000000.0"),
        (math.nan, "NaN"),
        (-math.inf, "-Infinity"),
        (12, "12"),
        ("text", "text"),
        (True, "true"),
        (datetime(2011, 5, 24, 17, 10, 5, 999999, tzinfo=UTC), "2011-05-24T17:10:05"),
        (datetime(2011, 5, 24, 17, 10), "2011-05-24T17:10:00"),  # naive is UTC
        ([1, "a", 0.5], "[1,a,.5]"),
    ],
)
def test_to_text(value: object, text: str) -> None:
    assert to_text(value) == text  # type: ignore[arg-type]


def test_a_zoned_datetime_renders_its_local_time() -> None:
    la = evaluate("inTimeZone(myDateTime, 'America/Los_Angeles')", SCOPE)
    assert la == T  # same instant
    assert to_text(la) == "2011-05-24T10:10:00"
    assert rendered("hour(inTimeZone(myDateTime, 'America/Los_Angeles'))") == "10"
    assert rendered("midnight(inTimeZone(myDateTime, 'Asia/Tokyo'))") == "2011-05-25T00:00:00"
    assert ev("midnight(inTimeZone(myDateTime, 'Asia/Tokyo'))") == datetime(2011, 5, 24, 15, 0, tzinfo=UTC)


# ------------------------------------------------------------------ date functions


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("plusMonths(makeDate(2011,1,31), 1)", "2011-02-28T00:00:00"),  # clamps to the month end
        ("plusMonths(makeDate(2012,1,31), 1)", "2012-02-29T00:00:00"),
        ("minusMonths(makeDate(2011,3,31), 1)", "2011-02-28T00:00:00"),
        ("plusYears(makeDate(2012,2,29), 1)", "2013-02-28T00:00:00"),
        ("plusMonths(makeDate(2011,11,15), 3)", "2012-02-15T00:00:00"),
        ("minusMonths(makeDate(2011,1,15), 13)", "2009-12-15T00:00:00"),
        ("plusDays(myDateTime, -1)", "2011-05-23T17:10:00"),
        ("plusMinutes(myDateTime, 60 * 24)", "2011-05-25T17:10:00"),
        ("minusHours(makeDate(2011,1,1), 1)", "2010-12-31T23:00:00"),
        ("sunday(makeDateTime(2011,5,22,9,30))", "2011-05-22T09:30:00"),  # a Sunday stays
        ("sunday(makeDateTime(2011,5,28,9,30))", "2011-05-22T09:30:00"),  # Saturday goes back 6 days
        ("sunday(makeDateTime(2011,5,23,9,30))", "2011-05-22T09:30:00"),  # Monday goes back 1 day
        ("firstOfMonth(makeDateTime(2011,3,31,23,59))", "2011-03-01T23:59:00"),
        ("midnight(makeDateTime(2011,3,31,23,59))", "2011-03-31T00:00:00"),
        ("yesterday(makeDate(2011,3,1))", "2011-02-28T00:00:00"),
        ("dayOfYear(makeDate(2012,12,31))", "366"),
        ("year(myText)", "2011"),  # a date-time literal string is a DateTime argument
        ("plusDays('2011-05-24T17:10:00', 1)", "2011-05-25T17:10:00"),
        ("plusDays(myDateTime, myCount)", "2011-05-29T17:10:00"),  # a digit string is an int argument
        ("plusPeriod(myDateTime, '1 day')", "2011-05-25T17:10:00"),
        ("minusPeriod(myDateTime, '2 hours 30 minutes')", "2011-05-24T14:40:00"),
        ("plusPeriod(makeDate(2011,1,31), '1 month')", "2011-02-28T00:00:00"),
    ],
)
def test_date_functions(expression: str, expected: str) -> None:
    assert rendered(expression) == expected


def test_both_call_styles_and_nesting() -> None:
    assert rendered("@scheduledStartTime.format('YYYY-MM-dd')") == "2011-05-24"
    assert rendered("format(@scheduledStartTime, 'YYYY-MM-dd')") == "2011-05-24"
    assert rendered("@scheduledStartTime.minusDays(1).format('dd')") == "23"
    assert rendered("minusDays(@scheduledStartTime, 1).format('dd')") == "23"
    assert rendered("@scheduledStartTime.midnight()") == "2011-05-24T00:00:00"
    assert rendered("format(plusHours(midnight(sunday(@scheduledEndTime)), 2), 'EEE HH')") == "Sun 02"
    assert rendered("(@scheduledStartTime).day()") == "24"


def test_day_arithmetic_keeps_the_wall_clock_across_dst() -> None:
    # 2011-03-13 is the US spring-forward day: plusDays keeps 09:00 local, plusHours is exact
    la = "inTimeZone(makeDateTime(2011,3,12,17,0), 'America/Los_Angeles')"
    assert rendered(f"format(plusDays({la}, 1), 'dd HH:mm z')") == "13 09:00 PDT"
    assert rendered(f"format(plusHours({la}, 24), 'dd HH:mm z')") == "13 10:00 PDT"
    assert rendered(f"plusDays({la}, 1)") == "2011-03-13T09:00:00"


def test_in_time_zone_accepts_offsets_and_utc() -> None:
    assert rendered("format(inTimeZone(myDateTime, '+05:30'), 'HH:mm ZZ')") == "22:40 +05:30"
    assert rendered("format(inTimeZone(myDateTime, 'UTC'), 'HH:mm z')") == "17:10 UTC"


@pytest.mark.parametrize(
    ("expression", "fragment", "column"),
    [
        ("makeDate(2011, 13, 1)", "Value 13 for monthOfYear must be in the range [1,12]", 1),
        ("makeDate(2011, 2, 29)", "Value 29 for dayOfMonth must be in the range [1,28]", 1),
        ("makeDateTime(2011, 2, 1, 24, 0)", "Value 24 for hourOfDay must be in the range [0,23]", 1),
        ("makeDateTime(2011, 2, 1, 1, 60)", "minuteOfHour", 1),
        ("plusYears(myDateTime, 9000)", "outside the supported date range", 1),
        ("plusDays(myDateTime, 99999999999)", "outside the supported date range", 1),
        (
            "inTimeZone(myDateTime, 'Mars/Olympus')",
            "The datetime zone id 'Mars/Olympus' is not recognised",
            1,
        ),
        ("plusPeriod(myDateTime, 'soon')", "expected a period like '1 day'", 1),
        (
            "plusDays(myDateTime, 1.5)",
            "plusDays() expects an Integer as argument 2 (days); found Double 1.5",
            22,
        ),
        (
            "plusDays('yesterday', 1)",
            "plusDays() expects a DateTime as argument 1 (myDateTime); found String",
            10,
        ),
        ("day(1)", "expects a DateTime", 5),
        ("format(myDateTime, 5)", "expects a String as argument 2 (format)", 20),
        ("format(myDateTime)", "format() takes 2 arguments; found 1", 1),
        (
            "myDateTime.format()",
            "format() takes 2 arguments (the value before the dot is the first); found 1",
            12,
        ),
        ("day(myDateTime, 1)", "day() takes 1 argument; found 2", 1),
    ],
)
def test_function_errors(expression: str, fragment: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        ev(expression)
    assert fragment in info.value.detail
    assert info.value.column == column


# ------------------------------------------------------------------ lists


def test_lists_give_one_value_per_item() -> None:
    assert render("#{'this is ' + myList}", SCOPE) == ["this is one", "this is two"]
    assert render("s3://b/#{myList}/x", SCOPE) == ["s3://b/one/x", "s3://b/two/x"]
    assert render("#{myNumbers * 10}", SCOPE) == ["10", "20"]
    assert render("#{format(myDates, 'dd')}", SCOPE) == ["24", "25"]
    assert render("#{myDates.format('dd')}", SCOPE) == ["24", "25"]
    # several lists: every combination, in order
    assert render("#{myList}-#{myNumbers}", SCOPE) == ["one-1", "one-2", "two-1", "two-2"]
    assert evaluate("myList + myNumbers", SCOPE) == ["one1", "one2", "two1", "two2"]
    assert render("#{myEmpty}", MappingScope({"myEmpty": []})) == []


def test_a_path_through_a_list_of_references_reads_each() -> None:
    inputs = [MappingScope({"directoryPath": "s3://a"}), MappingScope({"directoryPath": "s3://b"})]
    scope = MappingScope({"input": inputs})
    assert render("#{input.directoryPath}/x", scope) == ["s3://a/x", "s3://b/x"]


# ------------------------------------------------------------------ scopes and names


class CountingScope:
    def __init__(self, values: dict[str, object]) -> None:
        self.values = values
        self.asked: list[str] = []

    def lookup(self, name: str) -> object:
        self.asked.append(name)
        return self.values[name]


def test_names_are_looked_up_with_their_prefix() -> None:
    scope = CountingScope(
        {"@id": "@A_2011", "*myPassword": "x", "input": CountingScope({"@pipelineId": "df-1"})}
    )
    assert render("#{@id} #{*myPassword} #{input.@pipelineId}", scope) == "@A_2011 x df-1"  # type: ignore[arg-type]
    assert scope.asked == ["@id", "*myPassword", "input"]


def test_mapping_scope_falls_back_to_its_parent() -> None:
    parent = MappingScope({"a": 1, "b": 2})
    child = MappingScope({"b": 3}, parent)
    assert isinstance(child, Scope)
    assert evaluate("a + b", child) == 4
    assert child.names() == ["b", "a"]
    with pytest.raises(KeyError):
        child.lookup("c")


def test_unknown_names_and_functions() -> None:
    with pytest.raises(ExpressionError) as info:
        render("s3://#{myNmae}/x", SCOPE)
    assert info.value.detail == "unknown name 'myNmae'. Did you mean 'myName'?"
    assert info.value.column == 8 and info.value.suggestion == "myName"

    with pytest.raises(ExpressionError) as info:
        render("x #{fromat(myDateTime, 'YYYY')}", SCOPE)
    assert info.value.detail == "unknown function 'fromat'. Did you mean 'format'?"
    assert info.value.column == 5 and info.value.suggestion == "format"

    with pytest.raises(ExpressionError) as info:
        evaluate("plusday(myDateTime, 1)", SCOPE)
    assert "Did you mean 'plusDays'?" in str(info.value)

    with pytest.raises(ExpressionError) as info:
        evaluate("input.directoryPath", MappingScope({"input": MappingScope({"directoryPth": "x"})}))
    assert info.value.detail == "unknown name 'directoryPath' in 'input'. Did you mean 'directoryPth'?"
    assert info.value.column == 7

    with pytest.raises(ExpressionError, match=r"unknown name 'zzz'$"):
        evaluate("zzz", MappingScope({}))
    with pytest.raises(ExpressionError, match="format is a function"):
        evaluate("format", MappingScope({}))


def test_reading_a_field_of_a_non_object_is_an_error() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("myDateTime.year", SCOPE)
    assert "cannot read 'year' from 'myDateTime': it is a DateTime" in info.value.detail
    assert "year(...)" in info.value.detail
    assert info.value.column == 12


def test_a_reference_alone_has_no_text() -> None:
    with pytest.raises(ExpressionError) as info:
        render("path: #{input}", MappingScope({"input": MappingScope({})}))
    assert "name one of its fields" in info.value.detail
    assert info.value.column == 9


def test_errors_of_a_nested_field_are_reported_at_the_reading_expression() -> None:
    class Failing:
        def lookup(self, name: str) -> object:
            raise ExpressionError("unknown name 'myX'", column=3, object_id="In", field=name)

    with pytest.raises(ExpressionError) as info:
        render("cp #{input.directoryPath} .", MappingScope({"input": Failing()}))
    err = info.value.at("Act", "command")
    assert err.column == 12
    assert str(err) == (
        "object 'Act', field 'command', column 12: while evaluating 'input.directoryPath': "
        "object 'In', field 'directoryPath', column 3: unknown name 'myX'"
    )


def test_a_field_that_refers_to_itself_is_an_error() -> None:
    class Loop:
        def lookup(self, name: str) -> object:
            return render("#{" + name + "}", self)

    with pytest.raises(ExpressionError):
        render("#{a}", Loop())


@pytest.mark.parametrize(
    ("expression", "fragment", "column"),
    [
        (
            "myDateTime + 1",
            "cannot add DateTime 2011-05-24T17:10:00 and Integer 1 with '+'; shift a DateTime",
            12,
        ),
        ("1 - myDateTime", "cannot subtract Integer 1 and DateTime", 3),
        ("'a' * 2", "cannot multiply String 'a' and Integer 2", 5),
        ("-myName", "'-' needs a number; found String 'logs'", 1),
        ("1 / 0", "division by zero", 3),
        ("9223372036854775807 + 1", "integer overflow", 21),
        ("3037000500 * 3037000500", "integer overflow", 12),
    ],
)
def test_operator_errors(expression: str, fragment: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        ev(expression)
    assert fragment in info.value.detail
    assert info.value.column == column
    assert isinstance(info.value, TailraceError)


def test_render_columns_count_in_the_whole_field() -> None:
    with pytest.raises(ExpressionError) as info:
        render("abc #{1} #{day(1)}", SCOPE)
    assert info.value.column == 16  # the argument of day()
    assert "column 16" in str(info.value)


# ------------------------------------------------------------------ the function table and check()


def test_function_table_is_complete() -> None:
    expected = {
        "day", "dayOfYear", "hour", "minute", "month", "year", "firstOfMonth", "midnight", "sunday",
        "yesterday", "format", "makeDate", "makeDateTime", "inTimeZone", "plusPeriod", "minusPeriod",
    }  # fmt: skip
    for unit in ("Minutes", "Hours", "Days", "Weeks", "Months", "Years"):
        expected |= {f"plus{unit}", f"minus{unit}"}
    assert set(FUNCTIONS) == expected
    assert FUNCTIONS["makeDateTime"].arity == 5
    assert FUNCTIONS["format"].arg_types == ("DateTime", "String")
    assert FUNCTIONS["plusDays"].signature == "DateTime plusDays(DateTime myDateTime, int days)"
    assert FUNCTIONS["day"].returns == "int"


def test_check_finds_unknown_functions_and_arity_without_a_scope() -> None:
    text = "#{formt(@scheduledStartTime,'x')} #{day(a, b)} #{@x.midnight()}"
    problems = check(text)
    assert [p.column for p in problems] == [3, text.index("day(") + 1]
    assert problems[0].suggestion == "format"
    assert "day() takes 1 argument; found 2" in problems[1].detail


# ------------------------------------------------------------------ date-time literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2011-05-24T17:10:00", datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        (" 2011-05-24T17:10:00 ", datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        ("2011-05-24T17:10:00Z", datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        ("2011-05-24T17:10:00.250", datetime(2011, 5, 24, 17, 10, 0, 250000, tzinfo=UTC)),
        ("2011-05-24T17:10:00-07:00", datetime(2011, 5, 25, 0, 10, tzinfo=UTC)),
        ("2011-05-24", None),
        ("2011-05-24 17:10:00", None),
        ("2011-02-30T00:00:00", None),
        ("2011-05-24T0:00:00", None),
        ("yesterday", None),
    ],
)
def test_parse_datetime_value(text: str, expected: datetime | None) -> None:
    value = parse_datetime_value(text)
    assert value == expected
    if value is not None:
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_parse_datetime_value_keeps_the_instant_of_an_offset() -> None:
    value = parse_datetime_value("2011-05-24T17:10:00+05:30")
    assert value == datetime(2011, 5, 24, 17, 10, tzinfo=timezone(timedelta(hours=5, minutes=30)))
