"""One error family: domain errors reach the wire as AWS errors by class (api/errors.py), the
nearest class in the MRO deciding; a class's name decides nothing."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import orjson
import pytest
import sqlalchemy.exc

from tailrace.api.errors import AwsError, NotFoundRoute, code_for, domain_codes, to_aws_error
from tailrace.api.jsonproto import error_response
from tailrace.api.operations import TaskNotOwned
from tailrace.definition import DefinitionError
from tailrace.errors import ConfigError, StorageError, TailraceError
from tailrace.runtime.errors import InvalidRequest, PipelineDeleted
from tailrace.runtime.tasks import InvalidTaskStatus
from tailrace.state import DuplicateError, ObjectNotFound, PipelineNotFound, TaskNotFound

SRC = Path(__file__).resolve().parents[2] / "src" / "tailrace"


def _wire(exc: BaseException, *, rest: bool = False) -> tuple[int, dict[str, str]]:
    response = error_response(exc, request_id="r", rest=rest)
    return response.status_code, orjson.loads(response.body)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (PipelineNotFound("df-1"), "PipelineNotFoundException"),
        (PipelineDeleted("df-1"), "PipelineDeletedException"),
        (TaskNotFound("t" * 40), "TaskNotFoundException"),
        (TaskNotOwned("t" * 40), "TaskNotFoundException"),
        (InvalidRequest("no"), "InvalidRequestException"),
        (InvalidTaskStatus("no"), "InvalidRequestException"),
        (ObjectNotFound("df-1", "A"), "InvalidRequestException"),
        (DuplicateError("twice"), "InvalidRequestException"),
        (DefinitionError("bad field"), "InvalidRequestException"),
        (TailraceError("anything else of ours"), "InvalidRequestException"),
    ],
)
def test_domain_errors_become_their_aws_error_with_their_own_message(exc, code):
    status, body = _wire(exc)
    assert (status, body) == (400, {"__type": f"com.amazon.setl.webservice#{code}", "message": exc.message})


def test_the_nearest_class_decides_for_a_subclass_the_table_does_not_name():
    class Vanished(PipelineDeleted):
        pass

    class StillMissing(PipelineNotFound):
        pass

    assert code_for(Vanished("df-1")).code == "PipelineDeletedException"
    assert code_for(StillMissing("df-1")).code == "PipelineNotFoundException"


def test_a_class_that_only_shares_a_name_is_not_mapped_by_it():
    # The old mapping compared class names: this would have left as PipelineNotFoundException.
    PipelineNotFoundByName = type("PipelineNotFound", (TailraceError,), {})
    TaskNotFoundByName = type("TaskNotFound", (ValueError,), {})

    assert _wire(PipelineNotFoundByName("x"))[1]["__type"].endswith("#InvalidRequestException")
    status, body = _wire(TaskNotFoundByName("secret detail"))
    assert (status, body["__type"]) == (500, "com.amazon.setl.webservice#InternalServiceError")
    assert "secret" not in body["message"]


def test_server_side_failures_are_500_and_logged(caplog):
    caplog.set_level(logging.ERROR, logger="tailrace.api.errors")
    for exc in (StorageError("bucket unreachable"), ConfigError("bad data dir")):
        status, body = _wire(exc)
        assert (status, body["__type"]) == (500, "com.amazon.setl.webservice#InternalServiceError")
        assert exc.message in caplog.text


def test_a_busy_database_is_503_by_the_drivers_class():
    busy = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("database is locked"))
    status, body = _wire(busy)
    assert status == 503
    assert body["__type"] == "com.amazon.coral.service#ServiceUnavailableException"
    assert "locked" not in body["message"]


def test_rest_reports_missing_pipelines_as_404_and_api_errors_keep_their_own_code():
    assert _wire(PipelineDeleted("df-1"), rest=True)[0] == 404
    assert _wire(InvalidRequest("no"), rest=True)[0] == 400
    route = NotFoundRoute("no such path")
    assert to_aws_error(route) is route
    assert _wire(route)[0] == 404


def test_every_mapped_class_is_a_domain_error():
    assert all(issubclass(cls, TailraceError) and not issubclass(cls, AwsError) for cls in domain_codes())


def _error_classes() -> dict[str, list[str]]:
    """Exception classes defined in src/tailrace: name -> where. A class is an error when one of
    its bases is (by name, transitively through the classes defined here)."""
    defs: list[tuple[str, str, set[str]]] = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                defs.append((node.name, f"{path.relative_to(SRC)}:{node.lineno}", names))
    errors = {"Exception", "BaseException", "ValueError", "LookupError"}
    grew = True
    while grew:
        found = {name for name, _, bases in defs if bases & errors}
        grew = not found <= errors
        errors |= found
    out: dict[str, list[str]] = {}
    for name, place, bases in defs:
        if bases & errors:
            out.setdefault(name, []).append(place)
    return out


def test_each_error_class_is_defined_once():
    twice = {name: places for name, places in _error_classes().items() if len(places) > 1}
    assert not twice, f"error classes defined more than once: {twice}"
