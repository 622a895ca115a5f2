"""Validation like PutPipelineDefinition: every check names the object and field and says what it found."""

from __future__ import annotations

import json

import pytest

from tailrace.definition import DefinitionError, loads, validate

BASE = [
    {
        "id": "Default",
        "scheduleType": "cron",
        "schedule": {"ref": "Daily"},
        "role": "r",
        "resourceRole": "rr",
    },
    {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2012-12-24T00:00:00"},
    {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/#{@scheduledStartTime}"},
    {"id": "Box", "type": "Ec2Resource"},
    {
        "id": "Act",
        "type": "ShellCommandActivity",
        "command": "echo hi",
        "runsOn": {"ref": "Box"},
        "output": {"ref": "Out"},
    },
]


def _report(objects=None, *, change=None, drop=(), values=None, activation=False, **extra):
    objs = json.loads(json.dumps(objects if objects is not None else BASE))
    objs = [o for o in objs if o["id"] not in drop]
    for oid, fields in (change or {}).items():
        target = next((o for o in objs if o["id"] == oid), None)
        if target is None:
            objs.append({"id": oid, **fields})
            continue
        for k, v in fields.items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    return validate(loads(json.dumps({"objects": objs, **extra})), values, activation=activation)


def _only(report, severity="error"):
    got = report.errors if severity == "error" else report.warnings
    assert len(got) == 1, [str(p) for p in report.problems]
    return got[0]


def test_the_base_definition_is_clean():
    report = _report()
    assert report.problems == ()
    assert report.to_aws() == {"errored": False, "validationErrors": [], "validationWarnings": []}


@pytest.mark.parametrize(
    ("change", "oid", "field", "fragments"),
    [
        (
            {"Act": {"type": "ShellComandActivity"}},
            "Act",
            "type",
            ["unknown object type", "did you mean 'ShellCommandActivity'"],
        ),
        ({"Act": {"comand": "x"}}, "Act", "comand", ["unknown field 'comand'", "did you mean 'command'"]),
        (
            {"Default": {"maximumRetires": "3"}},
            "Default",
            "maximumRetires",
            ["did you mean 'maximumRetries'"],
        ),
        (
            {"Box": {"directoryPath": "x"}},
            "Box",
            "directoryPath",
            ["not a field of an Ec2Resource", "S3DataNode"],
        ),
        ({"Default": {"role": None}}, "Box", "role", ["missing required field 'role'"]),
        (
            {"Act": {"command": None}},
            "Act",
            "command",
            ["needs one of 'command' or 'scriptUri'; found neither"],
        ),
        (
            {"Act": {"scriptUri": "s3://x"}},
            "Act",
            "command",
            ["'command' and 'scriptUri' exclude each other"],
        ),
        (
            {"Daily": {"startAt": "FIRST_ACTIVATION_DATE_TIME"}},
            "Daily",
            "startDateTime",
            ["exclude each other"],
        ),
        (
            {"Daily": {"occurrences": "2", "endDateTime": "2013-01-01T00:00:00"}},
            "Daily",
            "endDateTime",
            ["exclude"],
        ),
        ({"Daily": {"period": "10 minutes"}}, "Daily", "period", ["at least 15 minutes", "'10 minutes'"]),
        ({"Daily": {"period": "4 years"}}, "Daily", "period", ["at most 3 years"]),
        (
            {"Daily": {"period": "15 Period"}},
            "Daily",
            "period",
            ["found '15 Period'", "'Period' is not a unit"],
        ),
        (
            {"Daily": {"startDateTime": "2012-12-24"}},
            "Daily",
            "startDateTime",
            [
                "INVALID_FIELD_VALUE: 'startDateTime' value must be a literal datetime value",
                "found '2012-12-24'",
            ],
        ),
        (
            {"Daily": {"endDateTime": "2012-12-01T00:00:00"}},
            "Daily",
            "endDateTime",
            ["later than 'startDateTime'"],
        ),
        ({"Act": {"retryDelay": "1 minute"}}, "Act", "retryDelay", ["at least 2 minutes"]),
        (
            {"Box": {"terminateAfter": "2 fortnights"}},
            "Box",
            "terminateAfter",
            ["'fortnights' is not a unit"],
        ),
        (
            {"Act": {"maximumRetries": "three"}},
            "Act",
            "maximumRetries",
            ["expected a whole number; found 'three'"],
        ),
        ({"Act": {"stage": "yes"}}, "Act", "stage", ["expected 'true' or 'false'"]),
        ({"Out": {"compression": "bzip2"}}, "Out", "compression", ["expected one of none, gzip (any case)"]),
        ({"Act": {"runsOn": {"ref": "Nope"}}}, "Act", "runsOn", ["refers to 'Nope', which is not an object"]),
        (
            {"Act": {"runsOn": {"ref": "Out"}}},
            "Act",
            "runsOn",
            ["must refer to a resource; 'Out' is an S3DataNode"],
        ),
        ({"Act": {"output": {"ref": "Box"}}}, "Act", "output", ["must refer to a data node"]),
        ({"Act": {"runsOn": "Box"}}, "Act", "runsOn", ["expects a reference", 'write {"ref": "Box"}']),
        (
            {"Act": {"command": {"ref": "Box"}}},
            "Act",
            "command",
            ["expects a String; found a reference to 'Box'"],
        ),
        ({"Act": {"workerGroup": ["a", "b"]}}, "Act", "workerGroup", ["takes one value; found 2"]),
        ({"Act": {"command": ""}}, "Act", "command", ["'command' is empty"]),
        ({"Box": {"runsOn": {"ref": "Box"}}}, "Box", "runsOn", ["not allowed on an Ec2Resource"]),
        ({"Act": {"scheduleType": "ondemand"}}, "Act", "scheduleType", ["must be set on Default"]),
        (
            {"Act": {"command": "echo #{nope}"}},
            "Act",
            "command",
            ["reads 'nope', which is not a field of this object"],
        ),
        ({"Act": {"command": "echo #{comand}"}}, "Act", "command", ["did you mean 'command'"]),
        (
            {"Act": {"command": "echo #{output.directoryPth}"}},
            "Act",
            "command",
            ["reads 'directoryPth', which is not a field of 'Out'", "did you mean 'directoryPath'"],
        ),
        ({"Act": {"command": "echo #{command.x}"}}, "Act", "command", ["is a string, not a reference"]),
        (
            {"Act": {"command": "echo #{frob(@scheduledStartTime)}"}},
            "Act",
            "command",
            ["unknown function 'frob'"],
        ),
        ({"Act": {"command": "echo #{"}}, "Act", "command", ["does not parse"]),
        (
            {"P": {"parent": {"ref": "Q"}}, "Q": {"parent": {"ref": "P"}}},
            "P",
            "parent",
            ["cycle: P -> Q -> P"],
        ),
        (
            {
                "Act": {"dependsOn": {"ref": "Act2"}},
                "Act2": {
                    "type": "ShellCommandActivity",
                    "command": "x",
                    "workerGroup": "w",
                    "dependsOn": {"ref": "Act"},
                },
            },
            "Act",
            "dependsOn",
            ["'dependsOn' references form a cycle: Act -> Act2 -> Act"],
        ),
    ],
)
def test_each_check_names_object_field_and_what_was_found(change, oid, field, fragments):
    err = _only(_report(change=change))
    assert (err.object_id, err.field) == (oid, field), str(err)
    for fragment in fragments:
        assert fragment in err.message, err.message
    assert err.line is not None


def test_a_schedule_is_needed_by_every_runnable_object():
    report = _report(change={"Default": {"schedule": None}})
    assert {(e.object_id, e.field) for e in report.errors} == {
        ("Out", "schedule"),
        ("Box", "schedule"),
        ("Act", "schedule"),
    }
    assert "an S3DataNode needs a schedule" in report.errors[0].message


def test_enumerations_accept_any_case():
    report = _report(
        change={
            "Default": {"scheduleType": "CRON", "failureAndRerunMode": "CASCADE"},
            "Box": {"actionOnResourceFailure": "retryAll"},
        }
    )
    assert not report.problems


def test_user_fields_and_masked_fields_are_accepted():
    report = _report(
        change={"Act": {"myComment": "hi", "my_ref": {"ref": "Box"}, "*myKey": "k", "myBad": {"ref": "X"}}}
    )
    err = _only(report)
    assert (err.object_id, err.field) == ("Act", "myBad")  # user refs are checked for existence only


def test_duplicate_ids_and_long_names():
    report = _report(objects=[*BASE, {"id": "Box", "type": "Ec2Resource"}])
    assert _only(report).message.startswith("the id 'Box' is used by more than one object")


def test_ondemand_rules():
    ondemand = {"Default": {"scheduleType": "ondemand", "schedule": None}}
    assert not _report(change=ondemand).problems
    with_schedule = _report(change={"Default": {"scheduleType": "ONDEMAND"}})
    err = _only(with_schedule)
    assert (err.object_id, err.field) == ("Default", "schedule") and "ondemand pipeline" in err.message
    dangling = _report(
        change={"Default": {"scheduleType": "ondemand", "schedule": {"ref": "Gone"}}}, drop=("Daily",)
    )
    assert _only(dangling, "warning").field == "schedule"
    explicit = _report(
        change={
            "Default": {"scheduleType": "ondemand"},
            "Daily": {
                "period": "ONDEMAND_PERIOD",
                "startAt": "ONDEMAND_ACTIVATION_TIME",
                "startDateTime": None,
            },
        }
    )
    assert not explicit.errors
    mixed = _report(
        change={"Default": {"scheduleType": "ondemand", "schedule": None}, "Act": {"scheduleType": "cron"}}
    )
    assert "must be the only scheduleType" in _only(mixed).message
    late = _report(
        change={
            "Default": {"scheduleType": "ondemand", "schedule": None},
            "Act": {"lateAfterTimeout": "1 hour"},
        }
    )
    assert _only(late, "warning").field == "lateAfterTimeout"


def test_types_that_cannot_run_here_warn():
    report = _report(change={"Act": {"type": "PigActivity", "command": None, "script": "x"}})
    w = _only(report, "warning")
    assert (w.object_id, w.field) == ("Act", "type") and "cannot run on this installation" in w.message


def test_parameters_declared_unset_undeclared_and_out_of_range():
    params = {
        "parameters": [{"id": "myEnv", "allowedValues": ["prod", "test"]}, {"id": "host", "default": "h"}]
    }
    change = {"Act": {"command": "echo #{myEnv} #{host} #{myOther}"}}
    report = _report(change=change, **params)
    assert {(e.object_id, e.field) for e in report.errors} == {("Act", "command")}
    got = {(w.object_id, w.field) for w in report.warnings}
    assert got == {("host", "id"), ("myEnv", None)}
    strict = _report(change=change, activation=True, **params)
    assert {(e.object_id, e.field) for e in strict.errors} == {("myEnv", None), ("Act", "command")}
    bad = _report(change=change, values={"myEnv": "staging", "myOther": "1"}, **params)
    err = _only(bad)
    assert (
        err.object_id == "myEnv"
        and "expected one of the allowedValues 'prod', 'test'; found 'staging'" in err.message
    )
    assert "value for 'myOther', which is not declared" in " ".join(w.message for w in bad.warnings) or any(
        "'myOther'" in w.message for w in bad.warnings
    )


def test_undeclared_my_name_in_an_expression_is_an_error_when_put():
    # AWS answers PutPipelineDefinition with a validation error, not a warning activation ignores.
    report = _report(change={"Act": {"command": "echo #{myUndeclared}"}})
    err = _only(report)
    assert (err.object_id, err.field) == ("Act", "command") and "'myUndeclared'" in err.message
    declared = _report(
        change={"Act": {"command": "echo #{myUndeclared}"}},
        parameters=[{"id": "myUndeclared", "default": "x"}],
    )
    assert not declared.errors


def test_expression_values_are_checked_after_parameter_substitution():
    params = {"parameters": [{"id": "myEvery", "default": "5 minutes"}]}
    report = _report(change={"Daily": {"period": "#{myEvery}"}}, **params)
    err = _only(report)
    assert err.field == "period" and "found '5 minutes' (from '#{myEvery}')" in err.message
    assert not _report(
        change={"Daily": {"period": "#{myEvery}"}}, values={"myEvery": "1 hour"}, **params
    ).problems


def test_report_raises_with_every_error_listed():
    report = _report(change={"Act": {"comand": "x", "stage": "maybe"}})
    with pytest.raises(DefinitionError) as info:
        report.raise_for_errors()
    assert info.value.report is report and "2 errors" in str(info.value)
    assert _report().raise_for_errors() is not None


def test_values_and_parameters_only_reports():
    values = validate(loads('{"values": {"myA": "1"}}'))
    assert values.kind == "values" and not values.problems
    params = validate(loads('{"parameters": [{"id": "myA", "type": "Strng"}]}'))
    assert params.kind == "parameters" and "did you mean 'String'" in _only(params).message
    assert validate(loads("{}")).errored


def test_fields_whose_expressions_read_themselves():
    report = _report(change={"Act": {"command": "#{myA}", "myA": "#{myB}", "myB": "x#{myA}"}})
    err = _only(report)
    assert (err.object_id, err.field) == ("Act", "myA")
    assert err.message.endswith("reads itself through its expressions: Act.myA -> Act.myB -> Act.myA")


def test_the_type_table_is_consistent():
    from tailrace.definition import OBJECT_TYPES, Category, Kind

    for t in OBJECT_TYPES.values():
        named = (
            set(t.required)
            | {f for g in t.one_of for f in g}
            | {f for a, b, _ in t.exclusive for f in (a, b)}
        )
        assert named <= set(t.fields), (t.name, named - set(t.fields))
        for spec in t.fields.values():
            assert spec.name in t.fields
            for target in spec.refs:
                assert isinstance(target, Category) or target in OBJECT_TYPES, (t.name, spec.name, target)
            assert (spec.kind == Kind.ENUM) == bool(spec.values)
        assert t.note, t.name
