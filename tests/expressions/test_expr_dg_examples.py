"""Every worked example of the Developer Guide's expression pages, as the service evaluates them.

Sources: dp-pipeline-reference-functions-math, dp-pipeline-reference-functions-datetime,
dp-pipeline-expressions (fields, node, nested, lists) and the old EvaluateExpression API example.
The DG writes DateTime results with typos; each normalised one says so in a comment.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tailrace.expressions import MappingScope, Scope, Value, evaluate, render, render_values

MY_DATETIME = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)  # "May 24, 2011 @ 5:10 pm GMT", a Tuesday
SCOPE = MappingScope({"myDateTime": MY_DATETIME})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#{1 + 2}", "3"),
        ("#{1 - 2}", "-1"),
        ("#{1 * 2}", "2"),
        ("#{1 / 2}", "0"),  # two integers: the result is truncated
        ("#{1.0 / 2}", ".5"),
        ("#{2 ^ 2}", "4.0"),
        ('#{"hel" + "lo"}', "hello"),
    ],
)
def test_math_and_string_examples(template: str, expected: str) -> None:
    assert render(template, SCOPE) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("day(myDateTime)", "24"),
        ("dayOfYear(myDateTime)", "144"),
        ("hour(myDateTime)", "17"),
        ("minute(myDateTime)", "10"),
        ("month(myDateTime)", "5"),
        ("year(myDateTime)", "2011"),
        # DG: "2011-05-01T17:10:00z" (trailing z is a DG typo; the service prints no zone)
        ("firstOfMonth(myDateTime)", "2011-05-01T17:10:00"),
        ("yesterday(myDateTime)", "2011-05-23T17:10:00"),
        # DG: "2011-05-24T0:00:00z" (one-digit hour and trailing z are DG typos)
        ("makeDate(2011,5,24)", "2011-05-24T00:00:00"),
        ("makeDateTime(2011,5,24,14,21)", "2011-05-24T14:21:00"),
        ("minusDays(myDateTime,1)", "2011-05-23T17:10:00"),
        ("plusDays(myDateTime,1)", "2011-05-25T17:10:00"),
        ("minusHours(myDateTime,1)", "2011-05-24T16:10:00"),
        ("plusHours(myDateTime,1)", "2011-05-24T18:10:00"),
        ("minusMinutes(myDateTime,1)", "2011-05-24T17:09:00"),
        # DG: "2011-05-24 17:11:00z" (space instead of T is a DG typo)
        ("plusMinutes(myDateTime,1)", "2011-05-24T17:11:00"),
        ("minusMonths(myDateTime,1)", "2011-04-24T17:10:00"),
        ("plusMonths(myDateTime,1)", "2011-06-24T17:10:00"),
        ("minusWeeks(myDateTime,1)", "2011-05-17T17:10:00"),
        ("plusWeeks(myDateTime,1)", "2011-05-31T17:10:00"),
        ("minusYears(myDateTime,1)", "2010-05-24T17:10:00"),
        ("plusYears(myDateTime,1)", "2012-05-24T17:10:00"),
        # DG: "2011-05-22 17:10:00 UTC" (space and zone are DG typos): the Sunday before Tuesday the 24th
        ("sunday(myDateTime)", "2011-05-22T17:10:00"),
        # DG: "2011-05-24T17:10:00 UTC"; the pattern has a space, not a T, so Joda prints a space
        ("format(myDateTime,'YYYY-MM-dd HH:mm:ss z')", "2011-05-24 17:10:00 UTC"),
    ],
)
def test_datetime_function_examples(expression: str, expected: str) -> None:
    assert render("#{" + expression + "}", SCOPE) == expected


def test_midnight_example_is_the_start_of_the_same_day() -> None:
    # DG: myDateTime = 2011-05-25T17:10:00z gives "2011-05-25T0:00:00z" (one-digit hour, z: DG typos)
    scope = MappingScope({"myDateTime": datetime(2011, 5, 25, 17, 10, tzinfo=UTC)})
    assert render("#{midnight(myDateTime)}", scope) == "2011-05-25T00:00:00"


def test_format_example_from_the_expressions_page() -> None:
    assert render("#{format(myDateTime,'YYYY-MM-dd hh:mm:ss')}", SCOPE) == "2011-05-24 05:10:00"


def test_in_time_zone_example() -> None:
    # inTimeZone(myDateTime,'America/Los_Angeles'): the same instant, seen in Los Angeles (PDT in May)
    assert evaluate("inTimeZone(myDateTime,'America/Los_Angeles')", SCOPE) == MY_DATETIME
    assert (
        render("#{format(inTimeZone(myDateTime,'America/Los_Angeles'),'YYYY-MM-dd HH:mm z Z')}", SCOPE)
        == "2011-05-24 10:10 PDT -0700"
    )


def test_nested_expression_examples() -> None:
    scope = MappingScope({"@scheduledStartTime": MY_DATETIME})
    node = MappingScope({"node": scope})
    assert render("#{format(minusMinutes(@scheduledStartTime,30),'YYYY-MM-dd hh:mm:ss')}", scope) == (
        "2011-05-24 04:40:00"
    )
    assert render("#{format(minusMinutes(node.@scheduledStartTime,30),'YYYY-MM-dd hh:mm:ss')}", node) == (
        "2011-05-24 04:40:00"
    )


def test_list_examples() -> None:
    scope = MappingScope({"myList": ["one", "two"], "myList1": [1, 2], "myList2": [3, 4]})
    assert render("#{'this is ' + myList}", scope) == ["this is one", "this is two"]
    # "[#{myList1}, #{myList2}]" as a multi-valued field evaluates to [1,2,3,4] (flattened)
    assert render_values(["#{myList1}", "#{myList2}"], scope) == ["1", "2", "3", "4"]


class ObjectScope:
    """A pipeline object as the definition layer exposes it: fields (rendered), refs, runtime fields."""

    def __init__(self, fields: dict[str, Value], parent: Scope | None = None) -> None:
        self.fields = fields
        self.parent = parent

    def lookup(self, name: str) -> Value:
        if name == "parent" and self.parent is not None:
            return self.parent
        value = self.fields[name]
        return render(value, self) if isinstance(value, str) and "#{" in value else value


def test_field_and_runtime_field_examples() -> None:
    schedule = ObjectScope({"startDateTime": "2012-12-12T00:00:00", "endDateTime": "2012-12-21T18:00:00"})
    # EvaluateExpression example (old API reference), evaluated in the Schedule's context
    assert render("Transform started at #{startDateTime} and finished at #{endDateTime}", schedule) == (
        "Transform started at 2012-12-12T00:00:00 and finished at 2012-12-21T18:00:00"
    )
    node = ObjectScope({"@id": "ExampleDataNode", "filePath": "s3://mybucket/#{parent.@id}.csv"})
    node.parent = node  # the DG's own example: parent.@id is the data node's id
    assert node.lookup("filePath") == "s3://mybucket/ExampleDataNode.csv"


def test_node_examples_in_an_alarm() -> None:
    output = ObjectScope({"directoryPath": "s3://bucket/out/#{format(@scheduledStartTime,'YYYY-MM-dd')}"})
    activity = ObjectScope(
        {
            "@scheduledStartTime": MY_DATETIME,
            "@scheduledEndTime": datetime(2011, 5, 24, 18, 10, tzinfo=UTC),
            "@actualEndTime": datetime(2011, 5, 24, 18, 12, 5, tzinfo=UTC),
            "output": output,
        }
    )
    output.fields["@scheduledStartTime"] = MY_DATETIME
    alarm = ObjectScope({"node": activity})
    assert render("Error for interval #{node.@scheduledStartTime}..#{node.@scheduledEndTime}.", alarm) == (
        "Error for interval 2011-05-24T17:10:00..2011-05-24T18:10:00."
    )
    assert render("S3 bucket '#{node.output.directoryPath}' succeeded at #{node.@actualEndTime}.", alarm) == (
        "S3 bucket 's3://bucket/out/2011-05-24' succeeded at 2011-05-24T18:12:05."
    )


def test_sample_definitions_expressions() -> None:
    scope = MappingScope({"@scheduledStartTime": datetime(2014, 3, 9, 13, 5, 9, tzinfo=UTC)})
    assert render("#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}", scope) == "2014-03-09-13-05-09"
    assert render("#{format(@scheduledStartTime,'YYYY-MM-dd_hh.mm')}", scope) == "2014-03-09_01.05"
    assert render("#{format(@scheduledStartTime, 'YYYY-MM')}", scope) == "2014-03"
    assert render("#{day(@scheduledStartTime)}", scope) == "9"
