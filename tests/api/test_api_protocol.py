"""The JSON 1.1 protocol through real boto3 clients and raw HTTP: shapes, errors, auth, owners."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_helpers import client_for
from botocore.exceptions import ClientError
from rawhttp import call

DEFINITION = [
    {
        "id": "Default",
        "name": "Default",
        "fields": [
            {"key": "scheduleType", "stringValue": "ondemand"},
            {"key": "failureAndRerunMode", "stringValue": "CASCADE"},
        ],
    },
    {
        "id": "Hello",
        "name": "Hello",
        "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"},
            {"key": "command", "stringValue": "echo #{myMsg}"},
            {"key": "workerGroup", "stringValue": "wg-1"},
        ],
    },
]
PARAMETERS = [
    {
        "id": "myMsg",
        "attributes": [{"key": "type", "stringValue": "String"}, {"key": "default", "stringValue": "hi"}],
    }
]


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def test_create_is_idempotent_on_unique_id_and_describe_shows_the_pipeline(dp):
    first = dp.create_pipeline(
        name="logs", uniqueId="u-1", description="web logs", tags=[{"key": "team", "value": "web"}]
    )
    again = dp.create_pipeline(name="logs", uniqueId="u-1")
    other = dp.create_pipeline(name="logs", uniqueId="u-2")
    assert first["pipelineId"] == again["pipelineId"] != other["pipelineId"]
    assert first["pipelineId"].startswith("df-")

    [desc] = dp.describe_pipelines(pipelineIds=[first["pipelineId"]])["pipelineDescriptionList"]
    fields = {f["key"]: f["stringValue"] for f in desc["fields"]}
    assert desc["name"] == "logs" and desc["description"] == "web logs"
    assert desc["tags"] == [{"key": "team", "value": "web"}]
    assert fields["@pipelineState"] == "PENDING"
    assert fields["uniqueId"] == "u-1"
    assert fields["@sphere"] == "PIPELINE"
    assert fields["@userId"] == "alice"
    datetime.strptime(fields["@creationTime"], "%Y-%m-%dT%H:%M:%S")


def test_definition_round_trip_validate_activate_deactivate(dp, store):
    pid = dp.create_pipeline(name="p", uniqueId="p")["pipelineId"]
    out = dp.put_pipeline_definition(pipelineId=pid, pipelineObjects=DEFINITION, parameterObjects=PARAMETERS)
    assert out["errored"] is False
    got = dp.get_pipeline_definition(pipelineId=pid)
    assert [o["id"] for o in got["pipelineObjects"]] == ["Default", "Hello"]
    hello = {f["key"]: f["stringValue"] for f in got["pipelineObjects"][1]["fields"]}
    assert hello["command"] == "echo #{myMsg}"
    assert got["parameterObjects"][0]["id"] == "myMsg"

    bad = [{"id": "X", "name": "X", "fields": [{"key": "type", "stringValue": "ShellCommandActivty"}]}]
    report = dp.validate_pipeline_definition(pipelineId=pid, pipelineObjects=bad)
    assert report["errored"] is True
    assert report["validationErrors"][0]["id"] == "X"
    assert any("ShellCommandActivity" in e for e in report["validationErrors"][0]["errors"])
    # Validate saves nothing.
    assert dp.get_pipeline_definition(pipelineId=pid)["pipelineObjects"] == got["pipelineObjects"]

    start = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    dp.activate_pipeline(
        pipelineId=pid, startTimestamp=start, parameterValues=[{"id": "myMsg", "stringValue": "yo"}]
    )
    with store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(pid).start_override == start  # epoch seconds arrived as this instant
    active = dp.get_pipeline_definition(pipelineId=pid, version="active")
    assert active["parameterValues"] == [{"id": "myMsg", "stringValue": "yo"}]
    assert _state(dp, pid) == "SCHEDULED"
    dp.deactivate_pipeline(pipelineId=pid, cancelActive=False)
    assert _state(dp, pid) == "INACTIVE"
    dp.delete_pipeline(pipelineId=pid)
    with pytest.raises(dp.exceptions.PipelineDeletedException):
        dp.describe_pipelines(pipelineIds=[pid])


def test_deleting_a_deleted_pipeline_answers_an_error_the_model_lists(dp):
    pid = dp.create_pipeline(name="gone", uniqueId="gone-1")["pipelineId"]
    dp.delete_pipeline(pipelineId=pid)
    listed = {e.name for e in dp.meta.service_model.operation_model("DeletePipeline").error_shapes}
    with pytest.raises(dp.exceptions.ClientError) as info:
        dp.delete_pipeline(pipelineId=pid)
    assert _code(info) in listed and _code(info) == "PipelineNotFoundException"
    with pytest.raises(dp.exceptions.PipelineDeletedException):  # where the model lists it
        dp.describe_pipelines(pipelineIds=[pid])


def _state(dp, pid: str) -> str:
    [desc] = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    return {f["key"]: f["stringValue"] for f in desc["fields"]}["@pipelineState"]


def test_list_pipelines_pages_by_marker(dp):
    made = sorted(dp.create_pipeline(name=f"p{i}", uniqueId=f"u{i}")["pipelineId"] for i in range(120))
    first = dp.list_pipelines()
    assert len(first["pipelineIdList"]) == 50 and first["hasMoreResults"] is True
    seen = [
        p["id"] for p in dp.get_paginator("list_pipelines").paginate().build_full_result()["pipelineIdList"]
    ]
    assert seen == made


def test_tags_add_and_remove(dp):
    pid = dp.create_pipeline(name="t", uniqueId="t")["pipelineId"]
    dp.add_tags(pipelineId=pid, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    dp.remove_tags(pipelineId=pid, tagKeys=["a"])
    [desc] = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    assert desc["tags"] == [{"key": "b", "value": "2"}]


def test_query_describe_set_status_and_evaluate_on_components(dp):
    pid = dp.create_pipeline(name="q", uniqueId="q")["pipelineId"]
    dp.put_pipeline_definition(pipelineId=pid, pipelineObjects=DEFINITION, parameterObjects=PARAMETERS)
    ids = (
        dp.get_paginator("query_objects")
        .paginate(pipelineId=pid, sphere="COMPONENT", PaginationConfig={"PageSize": 1})
        .build_full_result()["ids"]
    )
    assert ids == ["Default", "Hello"]
    assert dp.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"] == []
    with pytest.raises(ClientError) as e:
        dp.query_objects(
            pipelineId=pid,
            sphere="INSTANCE",
            query={
                "selectors": [
                    {
                        "fieldName": "@scheduledStartTime",
                        "operator": {"type": "BETWEEN", "values": ["2026-01-01T00:00:00"]},
                    }
                ]
            },
        )
    assert _code(e) == "InvalidRequestException" and "BETWEEN takes 2 values" in str(e.value)
    with pytest.raises(dp.exceptions.InvalidRequestException):
        dp.query_objects(pipelineId=pid, sphere="PLANET")
    dp.set_status(pipelineId=pid, objectIds=["Hello"], status="pause")
    objs = dp.describe_objects(pipelineId=pid, objectIds=["Hello", "missing"])["pipelineObjects"]
    assert [o["id"] for o in objs] == ["Hello"]
    assert {"key": "@status", "stringValue": "PAUSED"} in objs[0]["fields"]
    assert {"key": "@sphere", "stringValue": "COMPONENT"} in objs[0]["fields"]
    assert (
        dp.evaluate_expression(pipelineId=pid, objectId="Hello", expression="x#{1+1}")["evaluatedExpression"]
        == "x2"
    )


def test_selector_values_are_checked_and_status_spelling_is_normalised():
    from tailrace.api.operations import _selector

    sel = _selector(
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["cancelled", "finished"]}}, 0
    )
    assert sel["operator"]["values"] == ["CANCELED", "FINISHED"]
    with pytest.raises(Exception, match=r"query.selectors\[3\].operator.type is required"):
        _selector({"fieldName": "name", "operator": {}}, 3)


def test_errors_are_modelled_exceptions(dp):
    with pytest.raises(dp.exceptions.PipelineNotFoundException):
        dp.describe_pipelines(pipelineIds=["df-DOESNOTEXIST000000"])
    with pytest.raises(dp.exceptions.TaskNotFoundException):
        dp.report_task_progress(taskId="nope")
    pid = dp.create_pipeline(name="e", uniqueId="e")["pipelineId"]
    with pytest.raises(dp.exceptions.InvalidRequestException) as e:
        dp.get_pipeline_definition(pipelineId=pid, version="newest")
    assert "version must be 'latest' or 'active'" in str(e.value)


def test_task_runner_calls_with_nothing_to_do(dp):
    assert "taskObject" not in dp.poll_for_task(workerGroup="wg-1", hostname="h1")
    assert dp.report_task_runner_heartbeat(taskrunnerId="r1", workerGroup="wg-1")["terminate"] is False
    with pytest.raises(dp.exceptions.TaskNotFoundException):
        dp.set_task_status(taskId="nope", taskStatus="FINISHED")


# --- malformed requests ---------------------------------------------------------------------


def test_missing_required_members_and_bad_types_are_listed(server, alice):
    status, body = call(server.url, "DataPipeline.CreatePipeline", {"name": 5, "tags": "x"}, alice)
    assert status == 400
    assert body["__type"].endswith("#InvalidRequestException")
    msg = body["message"]
    assert msg.startswith("3 validation errors detected")
    assert "'uniqueId'" in msg and "'name'" in msg and "'tags'" in msg


def test_enum_length_and_control_characters(server, alice):
    status, body = call(
        server.url, "DataPipeline.SetTaskStatus", {"taskId": "t", "taskStatus": "DONE"}, alice
    )
    assert status == 400 and "enum value set: [FINISHED, FAILED, FALSE]" in body["message"]
    status, body = call(
        server.url, "DataPipeline.CreatePipeline", {"name": "x" * 1025, "uniqueId": "a\x01"}, alice
    )
    assert status == 400 and "less than or equal to 1024" in body["message"]
    assert "control characters" in body["message"]


def test_unknown_operation_bad_json_and_wrong_method(server, alice):
    status, body = call(server.url, "DataPipeline.CreatePipelines", {}, alice)
    assert status == 400 and body["__type"].endswith("#UnknownOperationException")
    assert "Did you mean 'CreatePipeline'" in body["message"]
    status, body = call(server.url, None, {}, alice)
    assert status == 400 and body["__type"].endswith("#UnknownOperationException")
    status, body = call(server.url, "DataPipeline.ListPipelines", None, alice, raw=b"{not json")
    assert status == 400 and body["__type"].endswith("#SerializationException")
    status, body = call(server.url, "DataPipeline.ListPipelines", None, alice, raw=b"[1]")
    assert status == 400 and body["__type"].endswith("#SerializationException")


# --- who may call ---------------------------------------------------------------------------


def test_unsigned_unknown_key_and_wrong_secret_are_refused(server, alice):
    status, body = call(server.url, "DataPipeline.ListPipelines", {})
    assert status == 403 and body["__type"].endswith("#MissingAuthenticationTokenException")

    stranger = client_for(server.url)
    with pytest.raises(ClientError) as e:
        stranger.list_pipelines()
    assert _code(e) == "UnrecognizedClientException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    forger = client_for(server.url, alice, secret="not-the-secret")
    with pytest.raises(ClientError) as e:
        forger.list_pipelines()
    assert _code(e) == "InvalidSignatureException"


def test_tampered_body_fails_the_signature(server, alice):
    from rawhttp import send, signed_headers

    body = b'{"name": "a", "uniqueId": "b"}'
    headers = signed_headers(
        server.url + "/",
        body,
        alice.access_key_id,
        alice.secret_access_key,
        headers={"X-Amz-Target": "DataPipeline.CreatePipeline", "Content-Type": "application/x-amz-json-1.1"},
    )
    status, _, payload = send(server.url + "/", body=body.replace(b'"a"', b'"z"'), headers=headers)
    assert status == 403 and b"InvalidSignatureException" in payload


def test_disabled_key_stops_working(server, keys, alice):
    client = client_for(server.url, alice)
    client.list_pipelines()
    keys.set_active(alice.access_key_id, False)
    with pytest.raises(ClientError) as e:
        client.list_pipelines()
    assert _code(e) == "UnrecognizedClientException"


def test_one_owner_cannot_see_or_change_anothers_pipeline(server, alice, bob):
    a, b = client_for(server.url, alice), client_for(server.url, bob)
    pid = a.create_pipeline(name="mine", uniqueId="same")["pipelineId"]
    a.put_pipeline_definition(pipelineId=pid, pipelineObjects=DEFINITION, parameterObjects=PARAMETERS)
    # The same uniqueId under another owner is another pipeline.
    assert b.create_pipeline(name="mine", uniqueId="same")["pipelineId"] != pid
    assert [p["id"] for p in b.list_pipelines()["pipelineIdList"]] != [pid]
    assert pid not in {p["id"] for p in b.list_pipelines()["pipelineIdList"]}
    for attempt in (
        lambda: b.describe_pipelines(pipelineIds=[pid]),
        lambda: b.get_pipeline_definition(pipelineId=pid),
        lambda: b.put_pipeline_definition(pipelineId=pid, pipelineObjects=DEFINITION),
        lambda: b.activate_pipeline(pipelineId=pid),
        lambda: b.delete_pipeline(pipelineId=pid),
        lambda: b.add_tags(pipelineId=pid, tags=[{"key": "x", "value": "y"}]),
        lambda: b.query_objects(pipelineId=pid, sphere="COMPONENT"),
        lambda: b.describe_objects(pipelineId=pid, objectIds=["Hello"]),
        lambda: b.set_status(pipelineId=pid, objectIds=["Hello"], status="PAUSE"),
        lambda: b.evaluate_expression(pipelineId=pid, objectId="Hello", expression="x"),
    ):
        with pytest.raises(b.exceptions.PipelineNotFoundException):
            attempt()
    # Still there, unchanged, for its owner.
    assert a.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"][0]["name"] == "mine"
    assert a.get_pipeline_definition(pipelineId=pid)["pipelineObjects"]


def test_activating_a_pipeline_with_no_definition_is_an_invalid_request(dp):
    pid = dp.create_pipeline(name="empty", uniqueId="empty-1")["pipelineId"]
    listed = {e.name for e in dp.meta.service_model.operation_model("ActivatePipeline").error_shapes}
    with pytest.raises(dp.exceptions.InvalidRequestException) as info:
        dp.activate_pipeline(pipelineId=pid)
    assert _code(info) in listed and "no definition" in info.value.response["Error"]["Message"]
    assert _state(dp, pid) == "PENDING"
    assert dp.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"] == []
