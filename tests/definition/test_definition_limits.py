"""AWS Data Pipeline's definition limits (objects per pipeline, fields per object, bytes of a
value, a name and an object), enforced with errors naming the object and field; adjustable
through tailrace.limits.Limits ([limits] in tailrace.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailrace.config import load_settings
from tailrace.definition import from_file_dict, validate
from tailrace.errors import ConfigError
from tailrace.limits import Limits


def _objects(*extra: dict) -> list[dict]:
    return [
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"},
        {"id": "Act", "type": "ShellCommandActivity", "command": "echo hi"},
        *extra,
    ]


def _errors(objects: list[dict], limits: Limits | None = None) -> list:
    report = validate(from_file_dict({"objects": objects}), limits=limits)
    return [p for p in report.problems if p.is_error]


def test_a_definition_within_the_limits_has_no_limit_errors():
    biggest = "x" * 10_240
    assert _errors(_objects({"id": "Big", "type": "ShellCommandActivity", "command": biggest})) == []


def test_more_objects_than_objects_per_pipeline():
    shells = [{"id": f"S{n}", "type": "ShellCommandActivity", "command": "true"} for n in range(99)]
    (problem,) = _errors(_objects(*shells))  # 101 objects
    assert problem.field == "objects"
    assert "101 objects" in problem.message and "at most 100" in problem.message
    assert _errors(_objects(*shells[:98])) == []
    (small,) = _errors(_objects(), Limits(objects_per_pipeline=1))
    assert "2 objects" in small.message


@pytest.mark.parametrize(
    ("value", "size"),
    [("x" * 10_241, "10,241"), ("€" * 3_414, "10,242")],  # bytes of UTF-8 count, not characters
)
def test_a_field_value_larger_than_field_value_bytes(value, size):
    (problem,) = _errors(_objects({"id": "Big", "type": "ShellCommandActivity", "command": value}))
    assert (problem.object_id, problem.field) == ("Big", "command")
    assert f"{size} bytes" in problem.message and "10,240" in problem.message


def test_more_fields_than_fields_per_object():
    args = [f"a{n}" for n in range(49)]  # command, type and 49 values of one multi-valued field
    (problem,) = _errors(
        _objects({"id": "Many", "type": "ShellCommandActivity", "command": "echo", "scriptArgument": args})
    )
    assert problem.object_id == "Many" and "51 fields" in problem.message and "at most 50" in problem.message


def test_an_object_larger_than_object_bytes():
    half = "y" * 8_000
    (problem,) = _errors(
        _objects({"id": "Fat", "type": "ShellCommandActivity", "command": half, "stdout": half})
    )
    assert problem.object_id == "Fat" and "15,360" in problem.message


def test_a_field_name_or_id_longer_than_field_name_bytes():
    long_id = "i" * 257
    errors = _errors(_objects({"id": long_id, "type": "ShellCommandActivity", "command": "true"}))
    assert [(p.object_id, p.field) for p in errors] == [(long_id, "id")]
    assert "256 bytes" in errors[0].message


def test_limits_come_from_the_limits_section_and_the_environment(tmp_path: Path):
    toml = tmp_path / "tailrace.toml"
    toml.write_text("[limits]\nobjects_per_pipeline = 500\nrunning_attempts = 3\n")
    settings = load_settings(environ={"TAILRACE_LIMITS_RUNNING_ATTEMPTS": "4"}, config_file=toml)
    assert settings.limits.objects_per_pipeline == 500
    assert settings.limits.running_attempts == 4  # the environment wins over the file
    assert settings.limits.instances_per_activation == Limits().instances_per_activation
    assert settings.as_dict()["limits"]["objects_per_pipeline"] == 500


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nrunning_atempts = 3\n", "Did you mean 'running_attempts'"),
        ("[limits]\nrunning_attempts = 0\n", "positive whole number"),
        ("[limits]\nrunning_attempts = 'many'\n", "positive whole number"),
        ("limits = 3\n", "must be a [limits] section"),
    ],
)
def test_bad_limits_are_refused_naming_the_setting(tmp_path: Path, text: str, message: str):
    toml = tmp_path / "tailrace.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(environ={}, config_file=toml)
