"""Inheritance (Default, parent chains) and parameters (values, types, effective values)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailrace.definition import (
    Category,
    DefinitionError,
    effective_parameters,
    load_values_file,
    loads,
    parse_parameter_values,
    resolve,
)


def _load(objects, **extra):
    return loads(json.dumps({"objects": objects, **extra}))


def test_default_then_parent_chain_then_own_fields():
    defn = _load(
        [
            {
                "id": "Default",
                "workerGroup": "wg",
                "role": "r",
                "scheduleType": "timeseries",
                "maximumRetries": "1",
            },
            {"id": "Base", "maximumRetries": "2", "stage": "true", "parent": {"ref": "Root"}},
            {"id": "Root", "myLevel": "root", "stage": "false", "type": "ShellCommandActivity"},
            {
                "id": "A",
                "type": "ShellCommandActivity",
                "parent": {"ref": "Base"},
                "command": "x",
                "myOwn": "1",
            },
        ]
    )
    rdef = resolve(defn)
    a = rdef.get("A")
    assert a is not None and a.category == Category.ACTIVITY
    assert a.string("workerGroup") == "wg"  # from Default, at the end of the chain
    assert a.string("maximumRetries") == "2"  # parent over Default
    assert a.string("stage") == "true"  # nearer parent over further parent
    assert a.string("myLevel") == "root"
    assert a.ref("parent") == "Base"  # own parent kept, the grandparent's is not passed down
    assert rdef.schedule_type == "timeseries"
    assert rdef.default is not None and rdef.default.category == Category.DEFAULT
    assert rdef.get("Base").type == "ShellCommandActivity"  # type comes down a parent chain...
    assert "type" not in rdef.get("Default").fields


def test_type_is_not_inherited_from_default_and_bad_parents_do_not_break_resolution():
    defn = _load(
        [
            {"id": "Default", "type": "Schedule", "role": "r"},
            {"id": "Lone", "myX": "1"},
            {"id": "P1", "parent": {"ref": "P2"}, "a": "1"},
            {"id": "P2", "parent": {"ref": "P1"}, "b": "2"},
            {"id": "M", "parent": {"ref": "Missing"}},
        ]
    )
    rdef = resolve(defn)
    assert rdef.get("Lone").type is None and rdef.get("Lone").category is None
    assert rdef.get("Lone").string("role") == "r"
    assert rdef.get("P1").fields["b"] == "2" and rdef.get("M").string("role") == "r"


def test_accessors_say_what_they_found():
    rdef = resolve(
        _load([{"id": "A", "input": [{"ref": "X"}, {"ref": "Y"}], "command": "c", "runsOn": {"ref": "R"}}])
    )
    a = rdef.get("A")
    assert a.refs("input") == ("X", "Y") and a.strings("command") == ("c",) and a.ref("runsOn") == "R"
    assert a.string("missing") is None and a.strings("missing") == () and a.ref("missing") is None
    with pytest.raises(DefinitionError, match="found 2 values"):
        a.string("input")
    with pytest.raises(DefinitionError, match="found a reference to 'R'"):
        a.string("runsOn")
    with pytest.raises(DefinitionError, match="found the string 'c'"):
        a.ref("command")
    with pytest.raises(DefinitionError, match="object 'A', field 'input'"):
        a.strings("input")
    assert rdef.of_category(Category.ACTIVITY) == []


def test_parse_parameter_values_repeats_into_arrays():
    assert parse_parameter_values(["myA=1", "myB=x=y", "myA=2", "myC="]) == {
        "myA": ("1", "2"),
        "myB": "x=y",
        "myC": "",
    }
    with pytest.raises(DefinitionError, match="KEY=VALUE"):
        parse_parameter_values(["novalue"])
    with pytest.raises(DefinitionError, match="before '='"):
        parse_parameter_values(["=v"])


@pytest.mark.parametrize(
    "content",
    [
        '{"values": {"myA": "1", "myB": ["2", "3"]}}',
        '{"myA": "1", "myB": ["2", "3"]}',
        '{"parameterValues": [{"id": "myA", "stringValue": "1"}, {"id": "myB", "stringValue": "2"}, '
        '{"id": "myB", "stringValue": "3"}]}',
    ],
)
def test_values_files_in_every_form(tmp_path: Path, content):
    f = tmp_path / "values.json"
    f.write_text(content)
    assert load_values_file(f) == {"myA": "1", "myB": ("2", "3")}


def test_values_file_problems_are_clear(tmp_path: Path):
    f = tmp_path / "v.json"
    f.write_text('{"values": {"myA": {"x": 1}}}')
    with pytest.raises(DefinitionError, match="for 'myA'"):
        load_values_file(f)
    f.write_text('{"values": ')
    with pytest.raises(DefinitionError, match=r"v.json:1:12"):
        load_values_file(f)


PARAMS = {
    "parameters": [
        {"id": "myS", "default": "d"},
        {"id": "myI", "type": "Integer", "allowedValues": ["1", "2"]},
        {"id": "myD", "type": "Double", "optional": "true"},
        {"id": "myArr", "isArray": "true", "default": ["a", "b"]},
        {"id": "*myPass", "type": "String", "default": "secret"},
    ],
    "values": {"myI": "1"},
}


def test_effective_parameters_apply_defaults_and_values():
    defn = _load([], **PARAMS)
    assert effective_parameters(defn) == {"myS": "d", "myI": "1", "myArr": ["a", "b"], "*myPass": "secret"}
    # values passed in replace the definition's values, like the CLI's --parameter-values
    got = effective_parameters(defn, {"myI": "2", "myS": "e", "myD": "0.5", "myArr": "z"})
    assert got == {"myS": "e", "myI": "2", "myD": "0.5", "myArr": ["z"], "*myPass": "secret"}


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"myI": "3"}, "expected one of the allowedValues '1', '2'; found '3'"),
        ({"myI": "x"}, "expected an Integer; found 'x'"),
        ({"myI": "1", "myD": "abc"}, "expected a Double; found 'abc'"),
        ({"myI": ["1", "2"]}, "takes one value; found 2"),
        ({"myS": "x"}, "'myI' has no value and no default"),
    ],
)
def test_effective_parameters_refuse_bad_values(values, fragment):
    with pytest.raises(DefinitionError) as info:
        effective_parameters(_load([], **PARAMS), values)
    assert fragment in str(info.value)
