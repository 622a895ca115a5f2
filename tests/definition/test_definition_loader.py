"""Loading: lenient JSON with positions, the file form, the wire form, values and parameters files."""

from __future__ import annotations

import json

import pytest

from tailrace.definition import DefinitionError, Ref, from_file_dict, loads
from tailrace.definition.jsonload import JNumber, parse_json, plain


def test_strict_json_parses_like_json_loads():
    text = '{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n\\ud83d\\ude00"], "b": {}}'
    doc = parse_json(text)
    assert plain(doc.value) == json.loads(text)
    assert doc.warnings == []
    assert doc.value["a"][0] == JNumber("1")


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ('{"a": 1,\n "b" 2}', 2, 6, "expected ':' after the key 'b'"),
        ('{"a": [1, 2}', 1, 12, "expected ',' or ']'"),
        ('{"a": "open', 1, 7, "not closed"),
        ("", 1, 1, "expected a value"),
        ('{"a": 1} x', 1, 10, "end of the document"),
        ('{"a": "\\q"}', 1, 8, "unknown escape"),
        ('{"a": 01}', 1, 8, "expected ',' or '}'"),
        ("[" * 300, 1, 201, "nested deeper"),
    ],
)
def test_syntax_errors_name_line_and_column(text, line, column, fragment):
    with pytest.raises(DefinitionError) as info:
        parse_json(text, source="f.json")
    err = info.value
    assert fragment in str(err)
    assert (err.location.line, err.location.column) == (line, column)
    assert str(err).startswith(f"f.json:{line}:{column}")


def test_published_departures_from_json_are_warnings_with_positions():
    text = '{"objects": [\n  {"id": "A", "myComment": "two\nlines",\n   "type": "Terminate",},\n]}'
    defn = loads(text, source="x.json")
    got = [(w.object_id, w.line, w.column, w.message.split(" ")[0]) for w in defn.warnings]
    assert got == [("A", 2, 32, "raw"), ("A", 4, 23, "trailing"), ("(file)", 4, 25, "trailing")]
    assert defn.objects[0].fields["myComment"] == "two\nlines"


def test_repeated_keys_keep_the_last_value_like_the_aws_cli():
    defn = loads('{"objects": [{"id": "E", "type": "EmrActivity", "step": "a", "step": "b"}]}')
    assert defn.objects[0].fields["step"] == "b"
    (w,) = defn.warnings
    assert w.object_id == "E" and "appears more than once" in w.message and w.line == 1


def test_file_form_values_refs_arrays_and_positions():
    text = json.dumps(
        {
            "objects": [
                {"id": "A", "name": "Say", "type": "ShellCommandActivity", "runsOn": {"ref": "R"}},
                {"id": "B", "scriptArgument": ["x", {"ref": "A"}], "column": ["only"], "empty": []},
            ],
            "parameters": [{"id": "myP", "allowedValues": ["a", "b"], "default": "a"}],
            "values": {"myP": ["a", "b"]},
            "metadata": {"templateName": "t"},
        },
        indent=1,
    )
    defn = loads(text)
    a, b = defn.objects
    assert a.name == "Say" and a.fields["runsOn"] == Ref("R") and a.type == "ShellCommandActivity"
    assert b.name is None and b.display_name == "B"
    assert b.fields["scriptArgument"] == ("x", Ref("A")) and b.fields["column"] == "only"
    assert "empty" not in b.fields and "empty array" in defn.warnings[0].message
    assert a.line == 3 and a.field_lines["runsOn"] == 7
    assert defn.parameters[0].attributes["allowedValues"] == ("a", "b")
    assert defn.values["myP"] == ("a", "b")
    assert defn.metadata == {"templateName": "t"}


def test_numbers_and_booleans_for_strings_load_with_a_warning():
    defn = loads(
        '{"objects": [{"id": "D", "maximumRetries": 3, "stage": true}], "parameters": [{"id": "myN", "default": 5}]}'
    )
    assert defn.objects[0].fields == {"maximumRetries": "3", "stage": "true"}
    assert defn.parameters[0].attributes["default"] == "5"
    assert len(defn.warnings) == 3 and all("expected a string" in w.message for w in defn.warnings)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"objects": [{"name": "x"}]}, "objects[0]: every object needs a non-empty string 'id'"),
        ({"objects": [{"id": "A", "f": {"reff": "B"}}]}, 'expected a string, a reference {"ref"'),
        ({"objects": [{"id": "A", "f": None}]}, "found null"),
        ({"objects": [{"id": "A", "f": [["x"]]}]}, "found an array"),
        ({"objects": "nope"}, "expected an array of objects"),
        (
            {"objects": [], "parameters": [{"type": "String"}]},
            "every parameter needs a non-empty string 'id'",
        ),
        ({"objects": [], "values": ["a"]}, "expected an object of id: value"),
    ],
)
def test_malformed_definitions_are_refused_with_every_problem(data, fragment):
    with pytest.raises(DefinitionError) as info:
        from_file_dict(data)
    assert any(fragment in p.message for p in info.value.report.errors), info.value.report.errors


def test_all_load_errors_are_collected_before_raising():
    with pytest.raises(DefinitionError) as info:
        loads('{"objects": [{"id": ""}, {"id": "A", "x": {"a": 1}}, 7]}')
    assert len(info.value.report.errors) == 3
    assert str(info.value).startswith("3 errors in <string>:")


def test_top_level_must_be_an_object():
    with pytest.raises(DefinitionError, match="found an array"):
        loads("[]")


def test_wire_form_and_the_published_wire_variant_load():
    wire = {
        "pipelineObjects": [
            {
                "id": "A",
                "name": "n",
                "fields": [{"key": "type", "stringValue": "Terminate"}, {"key": "onFail", "refValue": "A"}],
            }
        ],
        "parameterObjects": [{"id": "myP", "attributes": [{"key": "type", "stringValue": "String"}]}],
        "parameterValues": [{"id": "myP", "stringValue": "1"}, {"id": "myP", "stringValue": "2"}],
    }
    defn = loads(json.dumps(wire))
    assert defn.form == "wire" and defn.objects[0].fields == {"type": "Terminate", "onFail": Ref("A")}
    assert defn.values == {"myP": ("1", "2")}
    variant = {
        "objects": wire["pipelineObjects"],
        "parameters": wire["parameterObjects"],
        "parameterValues": [],
    }
    assert loads(json.dumps(variant)).objects == defn.objects


def test_values_only_and_parameters_only_files():
    assert loads('{"values": {"myA": "1"}}').kind == "values"
    assert loads('{"myA": "1", "myB": ["2", "3"]}').values == {"myA": "1", "myB": ("2", "3")}
    assert loads('{"parameters": [{"id": "myA"}]}').kind == "parameters"
    assert loads("{}").kind == "empty"


def test_unknown_top_level_keys_warn():
    defn = loads('{"objects": [], "parameterz": []}')
    assert defn.warnings[0].field == "parameterz" and "ignored" in defn.warnings[0].message
