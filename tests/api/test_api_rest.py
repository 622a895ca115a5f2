"""The REST API and /openapi.json: console views over a pipeline that has run, owner-scoped."""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from api_helpers import DEFINITION, T0, client_for
from rawhttp import send, signed_headers

from tailrace.definition import from_file_dict, to_wire


def _basic(key) -> dict[str, str]:
    token = base64.b64encode(f"{key.access_key_id}:{key.secret_access_key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(world, path: str, key=None, *, sigv4: bool = False):
    url = world.server.url + path
    headers = {}
    if key is not None:
        headers = (
            signed_headers(url, b"", key.access_key_id, key.secret_access_key, method="GET")
            if sigv4
            else _basic(key)
        )
    status, hdrs, body = send(url, method="GET", headers=headers)
    try:
        return status, hdrs, json.loads(body)
    except ValueError:
        return status, hdrs, body


def _run(world, definition: dict):
    """Alice's daily pipeline, backfilled three days; the first period ran and wrote a log."""
    alice = world.keys.create("alice")
    dp = client_for(world.server.url, alice)
    pid = dp.create_pipeline(name="hello", uniqueId="h")["pipelineId"]
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(definition)))
    dp.activate_pipeline(pipelineId=pid, startTimestamp=T0 - timedelta(days=2))
    world.scheduler.tick()
    task = dp.poll_for_task(workerGroup="wg-1", hostname="h1")["taskObject"]
    fields = {f["key"]: f.get("stringValue") for f in task["objects"][task["attemptId"]]["fields"]}
    log = Path(fields["@logLocation"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("hello from the task runner\nsecond line\n")
    dp.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
    world.scheduler.tick()
    return alice, pid, task


@pytest.fixture
def ran(world):
    return _run(world, DEFINITION)


def test_openapi_document_is_valid_and_lists_the_rest_paths(world):
    from openapi_spec_validator import validate

    status, _, doc = get(world, "/openapi.json")
    assert status == 200
    validate(doc)
    assert "/api/v1/pipelines/{pipeline_id}/grid" in doc["paths"]
    target = doc["paths"]["/"]["post"]["parameters"][0]["schema"]["enum"]
    assert "DataPipeline.PollForTask" in target and len(target) == 19
    # The AWS schemas come from botocore's model.
    assert doc["components"]["schemas"]["DataPipeline.CreatePipelineInput"]["required"] == [
        "name",
        "uniqueId",
    ]


def test_pipelines_grid_graph_instance_and_log(world, ran):
    alice, pid, task = ran
    status, _, page = get(world, "/api/v1/pipelines", alice)
    assert status == 200
    [p] = page["pipelines"]
    assert p["id"] == pid and p["state"] == "SCHEDULED" and p["owner"] == "alice"
    assert p["instanceCounts"]["FINISHED"] == 1

    status, _, grid = get(world, f"/api/v1/pipelines/{pid}/grid", alice, sigv4=True)
    assert status == 200
    assert [c["id"] for c in grid["components"]] == ["Hello"]
    starts = [row["scheduledStartTime"] for row in grid["periods"]]
    assert starts[:3] == ["2026-01-05T00:00:00", "2026-01-04T00:00:00", "2026-01-03T00:00:00"][: len(starts)]
    oldest = grid["periods"][starts.index("2026-01-03T00:00:00")]["cells"]["Hello"]
    assert oldest["status"] == "FINISHED" and oldest["headAttempt"] == task["attemptId"]
    status, _, window = get(world, f"/api/v1/pipelines/{pid}/grid?from=2026-01-04T00:00:00&limit=1", alice)
    assert [r["scheduledStartTime"] for r in window["periods"]] == [starts[0]]
    assert window["hasMore"] is (len(starts) > 2)

    status, _, graph = get(world, f"/api/v1/pipelines/{pid}/graph", alice)
    assert {n["id"] for n in graph["nodes"]} >= {"Hello", "Daily"}
    assert {"from": "Hello", "to": "Daily", "field": "schedule"} in graph["edges"]

    status, _, inst = get(world, f"/api/v1/pipelines/{pid}/instances/@Hello_2026-01-03T00:00:00", alice)
    assert status == 200 and inst["status"] == "FINISHED"
    assert [a["id"] for a in inst["attempts"]] == [task["attemptId"]] and inst["attempts"][0]["hasLog"]

    log_path = f"/api/v1/pipelines/{pid}/attempts/{task['attemptId']}/log"
    status, headers, text = get(world, log_path, alice)
    assert status == 200 and text.startswith(b"hello from the task runner")
    offset = int(headers["x-tailrace-next-offset"])
    status, headers, rest = get(world, f"{log_path}?offset=11", alice)
    assert rest == text[11:] and int(headers["x-tailrace-next-offset"]) == offset


def test_events_since_a_cursor(world, ran):
    alice, pid, _ = ran
    status, _, first = get(world, "/api/v1/events?limit=3", alice)
    assert status == 200 and len(first["events"]) == 3
    ids = [e["id"] for e in first["events"]]
    assert ids == sorted(ids) and first["cursor"] == ids[-1] and first["hasMore"] is True
    _, _, rest = get(world, f"/api/v1/events?after={first['cursor']}&limit=1000", alice)
    assert all(e["id"] > first["cursor"] for e in rest["events"])
    types = {e["type"] for e in first["events"] + rest["events"]}
    assert "pipeline.created" in types and any(t.startswith("instance.") for t in types)
    _, _, mine = get(world, f"/api/v1/events?pipelineId={pid}&limit=1000", alice)
    assert {e["pipelineId"] for e in mine["events"]} == {pid}


def test_rest_is_owner_scoped_and_authenticated(world, ran):
    alice, pid, task = ran
    bob = world.keys.create("bob")
    status, _, page = get(world, "/api/v1/pipelines", bob)
    assert status == 200 and page["pipelines"] == []
    _, _, events = get(world, "/api/v1/events?limit=1000", bob)
    assert events["events"] == [] and events["cursor"] > 0
    for path in (
        f"/api/v1/pipelines/{pid}",
        f"/api/v1/pipelines/{pid}/grid",
        f"/api/v1/pipelines/{pid}/graph",
        f"/api/v1/pipelines/{pid}/runs",
        f"/api/v1/pipelines/{pid}/attempts/{task['attemptId']}/log",
        f"/api/v1/events?pipelineId={pid}",
    ):
        status, _, body = get(world, path, bob)
        assert status == 404 and body["__type"].endswith("#PipelineNotFoundException"), path
    status, _, body = get(world, "/api/v1/pipelines")
    assert status == 403 and body["__type"].endswith("#MissingAuthenticationTokenException")
    wrong = type(alice)(
        access_key_id=alice.access_key_id,
        secret_access_key="guess",
        owner="alice",
        created_at=alice.created_at,
    )
    status, _, body = get(world, "/api/v1/pipelines", wrong)
    assert status == 403 and body["__type"].endswith("#InvalidSignatureException")


def test_bad_parameters_and_unknown_paths_are_aws_errors(world, ran):
    alice, pid, _ = ran
    for path, code in (
        (f"/api/v1/pipelines/{pid}/grid?limit=0", "InvalidRequestException"),
        (f"/api/v1/pipelines/{pid}/grid?from=yesterday", "InvalidRequestException"),
        (f"/api/v1/pipelines/{pid}/runs?status=exploded", "InvalidRequestException"),
        (f"/api/v1/pipelines/{pid}/runs?startedBetween=2026-01-01T00:00:00", "InvalidRequestException"),
        (f"/api/v1/pipelines/{pid}/runs?limit=100001", "InvalidRequestException"),
        ("/api/v1/events?after=-1", "InvalidRequestException"),
        ("/api/v1/nothing-here", "ResourceNotFoundException"),
        (f"/api/v1/pipelines/{pid}/instances/@nope", "ResourceNotFoundException"),
    ):
        status, _, body = get(world, path, alice)
        assert 400 <= status < 500 and body["__type"].endswith("#" + code), (path, body)
        assert body["message"]
    status, _, raw = send(world.server.url + "/api/v1/pipelines", method="DELETE", headers=_basic(alice))
    assert status == 405 and json.loads(raw)["__type"].endswith("#MethodNotAllowedException")


def test_runs_are_the_rows_boto3_builds_from_query_and_describe(world, ran):
    alice, pid, _ = ran
    dp = client_for(world.server.url, alice)
    window = "2026-01-01T00:00:00,2026-01-31T00:00:00"
    for params, selectors in (
        ({"scheduledBetween": window}, [("@scheduledStartTime", "BETWEEN", window.split(","))]),
        ({"status": "finished", "scheduledBetween": window}, [("@status", "EQ", ["FINISHED"])]),
        ({"status": "waiting_on_dependencies,cancelled"}, [("@status", "EQ", ["WAITING_ON_DEPENDENCIES"])]),
    ):
        query = urlencode(params)  # as clients send it: SigV4 signs the encoded query
        query_selectors = [{"fieldName": f, "operator": {"type": t, "values": v}} for f, t, v in selectors]
        ids = dp.query_objects(
            pipelineId=pid, sphere="INSTANCE", query={"selectors": query_selectors}, limit=100
        )["ids"]
        expected = []
        for obj in dp.describe_objects(pipelineId=pid, objectIds=ids)["pipelineObjects"] if ids else []:
            row = {"@id": obj["id"], "name": obj["name"]}
            row.update({f["key"]: f.get("stringValue", f.get("refValue")) for f in obj["fields"]})
            expected.append(row)
        expected.sort(key=lambda r: (r["@scheduledStartTime"], r["name"]))
        status, _, page = get(world, f"/api/v1/pipelines/{pid}/runs?{query}", alice, sigv4=True)
        assert status == 200, page
        assert page == {"runs": expected, "truncated": False} and expected, query


def test_rest_health_agrees_with_describe_pipelines(world, ran):
    """healthStatus: that of the activity instance that ended last, as DescribePipelines says."""
    alice, pid, _ = ran
    dp = client_for(world.server.url, alice)

    def described() -> str | None:
        [desc] = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
        return next((f["stringValue"] for f in desc["fields"] if f["key"] == "@healthStatus"), None)

    def rest() -> tuple[str | None, str | None]:
        one = get(world, f"/api/v1/pipelines/{pid}", alice)[2]["healthStatus"]
        [listed] = get(world, "/api/v1/pipelines", alice)[2]["pipelines"]
        return one, listed["healthStatus"]

    assert described() == "HEALTHY"
    assert rest() == ("HEALTHY", "HEALTHY")
    world.clock.advance(timedelta(days=1))
    world.scheduler.tick()
    task = dp.poll_for_task(workerGroup="wg-1", hostname="h1")["taskObject"]
    dp.set_task_status(taskId=task["taskId"], taskStatus="FAILED", errorMessage="boom")
    world.scheduler.tick()
    assert described() == "ERROR"
    assert rest() == ("ERROR", "ERROR")


def test_an_id_with_a_slash_is_one_percent_encoded_path_segment(world):
    """A component id may hold '/': its instance and attempt ids, percent-encoded as the console
    links them, reach the instance and its log (the decoded path has the '/' back)."""
    definition = copy.deepcopy(DEFINITION)
    definition["objects"][2]["id"] = "Say/Hello"
    alice, pid, task = _run(world, definition)
    assert task["attemptId"] == "@Say/Hello_2026-01-03T00:00:00_Attempt=1"
    iid = quote("@Say/Hello_2026-01-03T00:00:00", safe="")
    status, _, inst = get(world, f"/api/v1/pipelines/{pid}/instances/{iid}", alice)
    assert status == 200 and [a["id"] for a in inst["attempts"]] == [task["attemptId"]]
    status, _, text = get(
        world, f"/api/v1/pipelines/{pid}/attempts/{quote(task['attemptId'], safe='')}/log", alice
    )
    assert status == 200 and text.startswith(b"hello from the task runner")
    status, _, body = get(world, f"/api/v1/pipelines/{pid}/attempts/{quote('@Say/Nope', safe='')}/log", alice)
    assert status == 404 and "@Say/Nope" in body["message"]
