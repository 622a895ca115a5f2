"""`tailrace validate`: text and PutPipelineDefinition-shaped JSON output, exit codes."""

from __future__ import annotations

import json

import pytest

from compat_samples import SAMPLES
from tailrace.cli.main import run

needs_samples = pytest.mark.skipif(
    not (SAMPLES / "INDEX.md").is_file(), reason=f"AWS sample definitions not at {SAMPLES}"
)


def _cli(capsys, *argv):
    code = run(["validate", *map(str, argv)], lambda settings: None)
    out = capsys.readouterr()
    return code, out.out, out.err


@needs_samples
def test_valid_sample_exits_zero_and_lists_warnings(capsys):
    code, out, _ = _cli(capsys, SAMPLES / "ShellCommandWithFTP__pipeline.json")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("WARNING  DefaultSchedule  -  raw newline inside a string")
    assert "WARNING  user  id  parameter ids must start with 'my'" in out
    assert lines[-1].endswith(": valid: 6 objects, 5 parameters, 0 values (file form): 0 errors, 11 warnings")


@needs_samples
def test_errors_come_first_and_exit_one(capsys):
    code, out, _ = _cli(capsys, SAMPLES / "kinesis__kinesis-to-s3.json")
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("ERROR  DefaultSchedule  period  'period': expected a period like")
    assert first.endswith("found '15 Period' ('Period' is not a unit) (line 17)")


@needs_samples
def test_json_output_has_the_put_pipeline_definition_shape(capsys):
    code, out, _ = _cli(capsys, SAMPLES / "kinesis__kinesis-to-s3.json", "--output", "json")
    data = json.loads(out)
    assert code == 1 and set(data) == {"errored", "validationErrors", "validationWarnings"}
    assert data["errored"] is True
    assert data["validationErrors"][0]["id"] == "DefaultSchedule"
    assert all(set(w) == {"id", "warnings"} for w in data["validationWarnings"])


@needs_samples
def test_parameter_values_and_parameter_objects(capsys, tmp_path):
    defn = SAMPLES / "oracle-backup__definition.json"
    params = SAMPLES / "oracle-backup__parameters.json"
    code, out, _ = _cli(capsys, defn, "--parameter-objects", f"file://{params}", "--activation")
    assert code == 1 and "ERROR  myOracleHost  -  parameter 'myOracleHost' has no value" in out
    values = [
        f"{k}=v"
        for k in (
            "myBackupLocation",
            "myOracleDriverLocation",
            "myOracleHost",
            "myOracleDatabase",
            "myOracleUser",
            "myOraclePassword",
            "myOracleTable",
            "myPipelineLogUri",
        )
    ]
    values += ["myOraclePort=1521", "myTerminateAfter=2 hours"]
    code, out, _ = _cli(
        capsys, defn, "--parameter-objects", params, "--activation", "--parameter-values", *values
    )
    assert code == 0, out
    bad = tmp_path / "values.json"
    bad.write_text(json.dumps({"values": {"myOraclePort": "port"}}))
    code, out, _ = _cli(
        capsys, defn, "--parameter-objects", params, "--parameter-values-uri", f"file://{bad}"
    )
    assert code == 1 and "value of 'myOraclePort': expected an Integer; found 'port'" in out


@needs_samples
def test_values_and_parameters_files_are_recognised(capsys):
    code, out, _ = _cli(capsys, SAMPLES / "dynamo-db-export__example-parameters.json")
    assert code == 0 and "a parameter values file (6 values; nothing else to check)" in out
    code, out, _ = _cli(capsys, SAMPLES / "oracle-backup__parameters.json")
    assert code == 0 and "a parameters file (10 parameters)" in out


def test_bad_json_names_line_and_column(capsys, tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"objects": [\n {"id": "A",, }]}')
    code, out, _ = _cli(capsys, f)
    assert code == 1
    assert (
        out.splitlines()[0]
        == "ERROR  (file)  -  not valid JSON: expected a quoted key; found ',' (line 2, column 13)"
    )
    code, out, _ = _cli(capsys, f, "--output", "json")
    assert json.loads(out)["validationErrors"][0]["id"] == "(file)"


def test_usage_errors(capsys):
    code, _, err = _cli(capsys, "x.json", "--parameter-values", "a=1", "--parameter-values-uri", "v.json")
    assert code == 2 and "not both" in err
    code, out, _ = _cli(capsys, "/nonexistent/definition.json")
    assert code == 1 and "cannot read the definition file" in out
    with pytest.raises(SystemExit):
        run(["validate", "--help"], lambda settings: None)
    assert "PutPipelineDefinition" in capsys.readouterr().out
