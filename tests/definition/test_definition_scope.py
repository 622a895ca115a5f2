"""object_scope: the names `#{...}` reads in an object, with the expressions package's render."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tailrace.definition import loads, object_scope, resolve
from tailrace.expressions import ExpressionError, MappingScope, render

START = datetime(2012, 12, 24, tzinfo=UTC)


def _rdef():
    return resolve(
        loads(
            json.dumps(
                {
                    "objects": [
                        {"id": "Default", "schedule": {"ref": "S"}, "myRoot": "s3://b/#{myEnv}"},
                        {
                            "id": "S",
                            "type": "Schedule",
                            "period": "1 day",
                            "startDateTime": "2012-12-24T00:00:00",
                        },
                        {
                            "id": "In",
                            "type": "S3DataNode",
                            "directoryPath": "#{myRoot}/in/#{@scheduledStartTime}",
                        },
                        {
                            "id": "A",
                            "type": "ShellCommandActivity",
                            "command": "cat #{input.directoryPath}",
                            "input": {"ref": "In"},
                            "workerGroup": "w",
                            "scriptArgument": ["a", "b"],
                            "myLoop": "x#{myLoop2}",
                            "myLoop2": "y#{myLoop}",
                        },
                    ],
                    "parameters": [
                        {"id": "myEnv", "default": "prod"},
                        {"id": "*myPass", "default": "pw"},
                        {"id": "myN", "type": "Integer", "default": "3"},
                        {"id": "myR", "type": "Double", "default": "0.5"},
                        {"id": "myList", "isArray": "true", "default": ["x"]},
                    ],
                }
            )
        )
    )


def test_fields_render_recursively_through_references_and_inheritance():
    scope = object_scope(_rdef(), "A", runtime={"@scheduledStartTime": START, "@id": "@A_1"})
    assert scope.lookup("command") == "cat s3://b/prod/in/2012-12-24T00:00:00"
    assert scope.lookup("@scheduledStartTime") == START and scope.lookup("@id") == "@A_1"
    assert scope.lookup("workerGroup") == "w" and scope.lookup("scriptArgument") == ["a", "b"]
    assert scope.lookup("id") == "A" and scope.lookup("name") == "A"
    assert scope.lookup("input").lookup("directoryPath").startswith("s3://b/prod/in/")


def test_parameters_are_typed_and_masked_ids_match_both_ways():
    scope = object_scope(_rdef(), "A")
    assert scope.lookup("myN") == 3 and scope.lookup("myR") == 0.5 and scope.lookup("myList") == ["x"]
    assert scope.lookup("*myPass") == "pw" and scope.lookup("myPass") == "pw"
    explicit = object_scope(_rdef(), "A", parameters={"myEnv": "test"})
    assert explicit.lookup("myEnv") == "test"


def test_date_time_literals_come_back_as_datetimes():
    assert object_scope(_rdef(), "S").lookup("startDateTime") == START
    assert render("from #{startDateTime}", object_scope(_rdef(), "S")) == "from 2012-12-24T00:00:00"


def test_unknown_names_raise_key_error_and_loops_raise_expression_error():
    scope = object_scope(_rdef(), "A")
    with pytest.raises(KeyError):
        scope.lookup("nope")
    with pytest.raises(KeyError):
        scope.lookup("@scheduledStartTime")
    with pytest.raises(ExpressionError, match="reads itself"):
        scope.lookup("myLoop")
    with pytest.raises(KeyError):
        object_scope(_rdef(), "Missing")
    assert "command" in scope.names() and "myEnv" in scope.names()


def test_ref_scope_and_node_come_from_the_caller():
    seen = []

    def ref_scope(ref_id):
        seen.append(ref_id)
        return MappingScope({"directoryPath": "s3://instance/path"})

    node = MappingScope({"@status": "FAILED"})
    scope = object_scope(_rdef(), "A", ref_scope=ref_scope, runtime={"node": node})
    assert scope.lookup("command") == "cat s3://instance/path" and seen == ["In"]
    assert scope.lookup("node") is node
