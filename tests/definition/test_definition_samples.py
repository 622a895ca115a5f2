"""The 43 published AWS Data Pipeline sample files (shared/compat/dp-samples): load, validate, round trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from compat_samples import SAMPLES, require_samples
from tailrace.definition import DefinitionError, from_wire, load_file, to_file, to_wire, validate

require_samples()
FILES = sorted(p.name for p in SAMPLES.glob("*.json"))
NON_STRICT = {"OnDemandWithLamdaFunctions__ondemand.json", "ShellCommandWithFTP__pipeline.json"}
WIRE = {"RDStoRedshiftSqoop__setup__setup.json", "SQLActivityWithTimeout__setup__setup.json"}
VALUES_ONLY = {"dynamo-db-export__example-parameters.json", "oracle-backup__values.json"}
PARAMETERS_ONLY = {"oracle-backup__parameters.json"}
NEEDS_PARAMETERS = {
    "DynamoDBImport__XMLtoDynamoDBImport.json",
    "RDStoRedshiftSqoop__RDStoRedshiftSqoop.json",
    "RedshiftCopyActivityFromDynamoDBTable__RedshiftCopyActivityFromDynamoDBTable.json",
    "SimplePigActivity__pig_activity_sample.json",
    "oracle-backup__definition.json",
}


def test_the_corpus_is_all_there():
    assert len(FILES) == 43


@pytest.mark.parametrize("name", FILES)
def test_every_sample_loads_as_the_index_says(name):
    defn = load_file(SAMPLES / name)
    expected_kind = (
        "values" if name in VALUES_ONLY else "parameters" if name in PARAMETERS_ONLY else "definition"
    )
    assert defn.kind == expected_kind
    assert defn.form == ("wire" if name in WIRE else "file")
    if name in NON_STRICT:
        assert defn.warnings, "non-strict JSON must load with warnings"
        for w in defn.warnings:
            assert w.line is not None and w.column is not None
    else:
        json.loads((SAMPLES / name).read_text())  # really strict JSON
        assert not defn.warnings


@pytest.mark.parametrize("name", [n for n in FILES if n != "kinesis__kinesis-to-s3.json"])
def test_every_sample_but_kinesis_validates_without_errors(name):
    report = validate(load_file(SAMPLES / name))
    # Samples whose expressions read `my...` parameters ship them in a separate file: put alone,
    # AWS rejects them, and so does this; those undeclared names are their only errors.
    other = [e for e in report.errors if "not declared in 'parameters'" not in e.message]
    assert not other, "\n".join(map(str, other))
    assert bool(report.errors) == (name in NEEDS_PARAMETERS)


def test_kinesis_sample_reports_its_malformed_period_on_the_schedule():
    report = validate(load_file(SAMPLES / "kinesis__kinesis-to-s3.json"))
    assert len(report.errors) == 1
    (err,) = report.errors
    assert (err.object_id, err.field, err.line) == ("DefaultSchedule", "period", 17)
    assert "'15 Period'" in err.message and "minutes" in err.message
    aws = report.to_aws()
    assert aws["errored"] is True
    assert aws["validationErrors"] == [{"id": "DefaultSchedule", "errors": [err.message + " (line 17)"]}]


def test_non_strict_samples_name_line_and_column():
    ftp = validate(load_file(SAMPLES / "ShellCommandWithFTP__pipeline.json"))
    places = {(w.object_id, w.line, w.column) for w in ftp.warnings if w.column is not None}
    assert ("DefaultSchedule", 18, 148) in places  # raw newline inside myComment
    assert ("S3OutputLocation", 41, 96) in places  # trailing comma
    ondemand = validate(load_file(SAMPLES / "OnDemandWithLamdaFunctions__ondemand.json"))
    messages = [(w.object_id, w.line, w.message) for w in ondemand.warnings]
    assert ("Default", 12, "trailing comma before '}' (not allowed in JSON)") in messages


def test_parameters_without_the_my_prefix_warn_at_their_declaration():
    report = validate(load_file(SAMPLES / "ShellCommandWithFTP__pipeline.json"))
    prefix = [w for w in report.warnings if w.field == "id"]
    assert {(w.object_id, w.line) for w in prefix} == {("user", 98), ("host", 104)}
    # ...and `#{user}@#{host}` in the command still resolves to them: no undeclared-name problem.
    assert not [
        p for p in report.problems if p.object_id == "ShellCommandActivityObj" and p.field == "command"
    ]


def test_dangling_schedule_in_an_ondemand_sample_is_a_warning():
    report = validate(load_file(SAMPLES / "json-to-dynamodb__definition.json"))
    (w,) = [p for p in report.problems if p.field == "schedule"]
    assert w.severity == "warning" and w.object_id == "Default" and "DefaultSchedule" in w.message


def test_types_that_cannot_run_here_are_named_in_warnings():
    report = validate(load_file(SAMPLES / "SimplePigActivity__pig_activity_sample.json"))
    cannot = {w.object_id for w in report.warnings if "cannot run on this installation" in w.message}
    assert cannot == {"PigActivity1", "InputDataFormat1"}
    # Redshift objects run on PostgreSQL now: no such warning for them.
    report = validate(load_file(SAMPLES / "LoadTsvFilesInS3ToRedshift__LoadTsvFilesInS3ToRedshift.json"))
    assert not [w for w in report.warnings if "cannot run on this installation" in w.message]


def test_oracle_backup_with_its_parameters_and_template_values():
    defn = load_file(SAMPLES / "oracle-backup__definition.json")
    alone = validate(defn)
    undeclared = {e.message.split("'")[3] for e in alone.errors if "not declared" in e.message}
    assert len(alone.errors) == 10
    assert "myOracleHost" in undeclared and len(undeclared) == 10
    declared = load_file(SAMPLES / "oracle-backup__parameters.json")
    values = {k: v for k, v in load_file(SAMPLES / "oracle-backup__values.json").values.items()}
    with_params = validate(
        type(defn)(objects=defn.objects, parameters=declared.parameters, source=defn.source), values
    )
    # The published values file is a template of empty strings: the Integer port cannot be ''.
    assert {(e.object_id, e.field) for e in with_params.errors} == {
        ("myOraclePort", None),
        ("Instance", "terminateAfter"),
    }


@pytest.mark.parametrize("name", [n for n in FILES if n not in VALUES_ONLY | PARAMETERS_ONLY])
def test_round_trip_file_wire_file_is_the_identity(name):
    defn = load_file(SAMPLES / name)
    wire = to_wire(defn)
    back = from_wire(json.loads(json.dumps(wire)))
    expected = to_file(defn)
    expected.pop("metadata", None)  # the wire form has no metadata (the CLI drops it too)
    assert to_file(back) == expected
    assert to_wire(back) == wire


@pytest.mark.parametrize("name", sorted(set(FILES) - NON_STRICT - WIRE - VALUES_ONLY - PARAMETERS_ONLY))
def test_to_wire_matches_the_aws_cli_translator(name):
    translator = pytest.importorskip("awscli.customizations.datapipeline.translator")
    raw = json.loads((SAMPLES / name).read_text())
    ours = to_wire(load_file(SAMPLES / name))
    assert ours["pipelineObjects"] == translator.definition_to_api_objects(copy.deepcopy(raw))
    cli_params = translator.definition_to_api_parameters(copy.deepcopy(raw)) or []
    assert ours.get("parameterObjects", []) == cli_params
    # ...and the CLI's way back gives the same file form as ours.
    api = {"pipelineObjects": ours["pipelineObjects"], "parameterObjects": cli_params}
    cli_file = translator.api_to_definition(copy.deepcopy(api))
    mine = to_file(load_file(SAMPLES / name))
    assert cli_file["objects"] == mine["objects"]


def test_a_missing_sample_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DefinitionError, match="cannot read"):
        load_file(tmp_path / "nope.json")
