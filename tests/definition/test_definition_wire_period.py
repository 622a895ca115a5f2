"""The wire form (CLI translator rules) and periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tailrace.definition import (
    DefinitionError,
    ParameterDef,
    Period,
    PipelineDefinition,
    PipelineObject,
    Ref,
    from_wire,
    parse_period,
    to_file,
    to_wire,
)


def _defn() -> PipelineDefinition:
    return PipelineDefinition(
        objects=(
            PipelineObject(id="A", fields={"type": "EmrActivity", "step": ("s1", "s2"), "runsOn": Ref("C")}),
            PipelineObject(id="C", name="Cluster", fields={"type": "EmrCluster"}),
        ),
        parameters=(ParameterDef(id="myP", attributes={"type": "String", "allowedValues": ("a", "b")}),),
        values={"myP": ("a", "b")},
    )


def test_to_wire_follows_the_cli_name_sorting_and_repetition_rules():
    wire = to_wire(_defn())
    a = wire["pipelineObjects"][0]
    assert a["name"] == "A"  # name defaults to the id
    assert a["fields"] == [
        {"key": "runsOn", "refValue": "C"},
        {"key": "step", "stringValue": "s1"},
        {"key": "step", "stringValue": "s2"},
        {"key": "type", "stringValue": "EmrActivity"},
    ]
    assert wire["parameterObjects"][0]["attributes"][:2] == [
        {"key": "allowedValues", "stringValue": "a"},
        {"key": "allowedValues", "stringValue": "b"},
    ]
    assert wire["parameterValues"] == [{"id": "myP", "stringValue": "a"}, {"id": "myP", "stringValue": "b"}]


def test_from_wire_aggregates_repeated_keys_and_to_file_always_writes_name():
    back = from_wire(to_wire(_defn()))
    assert back.objects[0].fields["step"] == ("s1", "s2")
    assert back.form == "wire" and back.source == "<wire>"
    out = to_file(back)
    assert out["objects"][0] == {
        "id": "A",
        "name": "A",
        "runsOn": {"ref": "C"},
        "step": ["s1", "s2"],
        "type": "EmrActivity",
    }
    assert out["values"] == {"myP": ["a", "b"]}


@pytest.mark.parametrize(
    ("wire", "fragment"),
    [
        ({"pipelineObjects": [{"id": "A", "fields": []}]}, "non-empty string 'name'"),
        ({"pipelineObjects": [{"name": "A", "fields": []}]}, "non-empty string 'id'"),
        ({"pipelineObjects": [{"id": "A", "name": "A", "fields": [{"key": "k"}]}]}, "found neither"),
        (
            {
                "pipelineObjects": [
                    {"id": "A", "name": "A", "fields": [{"key": "k", "stringValue": "x", "refValue": "y"}]}
                ]
            },
            "found both",
        ),
        (
            {"pipelineObjects": [{"id": "A", "name": "A", "fields": [{"key": "k", "refValue": ""}]}]},
            "empty string",
        ),
        (
            {"pipelineObjects": [{"id": "A", "name": "A", "fields": [{"key": "k", "stringValue": 3}]}]},
            "must be a string",
        ),
        ({"pipelineObjects": "x"}, "expected a list of objects"),
        (
            {"parameterObjects": [{"id": "myP", "attributes": [{"key": "type"}]}]},
            "'stringValue' must be a string",
        ),
        ({"parameterValues": [{"stringValue": "v"}]}, "non-empty string 'id'"),
    ],
)
def test_from_wire_refuses_malformed_shapes(wire, fragment):
    with pytest.raises(DefinitionError) as info:
        from_wire(wire)
    assert any(fragment in p.message for p in info.value.report.errors)


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("1 Day", 1, "days"),
        ("1 days", 1, "days"),
        ("15 Minutes", 15, "minutes"),
        ("2 hours", 2, "hours"),
        ("1 Hour", 1, "hours"),
        ("1 Week", 1, "weeks"),
        (" 3 months ", 3, "months"),
        ("1 year", 1, "years"),
        ("10 mins", 10, "minutes"),
        ("70Minutes", 70, "minutes"),
    ],
)
def test_parse_period_accepts_the_spellings_in_use(text, amount, unit):
    assert parse_period(text) == Period(amount=amount, unit=unit)


@pytest.mark.parametrize(
    "text", ["15 Period", "day", "1.5 hours", "-1 day", "0 days", "", "1 fortnight", "#{myX}"]
)
def test_parse_period_says_what_it_expected(text):
    with pytest.raises(DefinitionError) as info:
        parse_period(text)
    assert "found" in str(info.value)


def test_period_arithmetic():
    jan31 = datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_period("1 month").add(jan31) == datetime(2024, 2, 29, tzinfo=UTC)
    assert parse_period("1 month").add(jan31, 2) == datetime(2024, 3, 31, tzinfo=UTC)
    assert parse_period("15 minutes").add(jan31, -1) == jan31 - timedelta(minutes=15)
    assert parse_period("2 weeks").to_timedelta() == timedelta(days=14)
    with pytest.raises(DefinitionError, match="fixed length"):
        parse_period("1 year").to_timedelta()
    assert str(parse_period("1 Days")) == "1 day" and str(parse_period("15 minutes")) == "15 minutes"
