"""Every operation of the 2012-10-29 model through an unmodified boto3 client, against the real
pipeline service with its scheduler ticked by hand (service clock frozen; SigV4 on real time)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_helpers import DEFINITION, T0, client_for
from botocore import xform_name

from tailrace.api import shapes


def test_every_operation_through_boto3(world):
    from tailrace.definition import from_file_dict, to_wire

    srv, keys, scheduler = world.server, world.keys, world.scheduler
    dp = client_for(srv.url, keys.create("ops"))
    used: set[str] = set()

    def call(op: str, **kw):
        used.add(op)
        return getattr(dp, op)(**kw)

    pid = call("create_pipeline", name="hello", uniqueId="hello-1", tags=[{"key": "env", "value": "test"}])[
        "pipelineId"
    ]
    wire = to_wire(from_file_dict(DEFINITION))
    assert call("validate_pipeline_definition", pipelineId=pid, **wire)["errored"] is False
    assert call("put_pipeline_definition", pipelineId=pid, **wire)["errored"] is False
    assert call("get_pipeline_definition", pipelineId=pid, version="latest")["pipelineObjects"]
    call("add_tags", pipelineId=pid, tags=[{"key": "team", "value": "web"}])
    call("remove_tags", pipelineId=pid, tagKeys=["env"])
    assert {p["id"] for p in call("list_pipelines")["pipelineIdList"]} == {pid}

    call(
        "activate_pipeline",
        pipelineId=pid,
        startTimestamp=T0 - timedelta(days=2),
        parameterValues=[{"id": "myMsg", "stringValue": "yo"}],
    )
    scheduler.tick()
    [desc] = call("describe_pipelines", pipelineIds=[pid])["pipelineDescriptionList"]
    assert desc["tags"] == [{"key": "team", "value": "web"}]
    assert {"key": "@pipelineState", "stringValue": "SCHEDULED"} in desc["fields"]

    instances = call("query_objects", pipelineId=pid, sphere="INSTANCE")["ids"]
    assert instances[:3] == [
        "@Hello_2026-01-03T00:00:00",
        "@Hello_2026-01-04T00:00:00",
        "@Hello_2026-01-05T00:00:00",
    ]

    # A task runner speaking the public protocol runs the first two periods.
    assert (
        call("report_task_runner_heartbeat", taskrunnerId="runner-1", workerGroup="wg-1", hostname="h1")[
            "terminate"
        ]
        is False
    )
    task = call("poll_for_task", workerGroup="wg-1", hostname="h1")["taskObject"]
    attempt = task["objects"][task["attemptId"]]
    assert {"key": "command", "stringValue": "echo yo"} in attempt["fields"]
    assert (
        call(
            "report_task_progress",
            taskId=task["taskId"],
            fields=[{"key": "percentComplete", "stringValue": "50"}],
        )["canceled"]
        is False
    )
    call("set_task_status", taskId=task["taskId"], taskStatus="FINISHED")
    failing = call("poll_for_task", workerGroup="wg-1", hostname="h1")["taskObject"]
    call(
        "set_task_status",
        taskId=failing["taskId"],
        taskStatus="FAILED",
        errorId="E42",
        errorMessage="exit code 1",
        errorStackTrace="line 1",
    )
    scheduler.tick()

    described = call("describe_objects", pipelineId=pid, objectIds=instances[:2], evaluateExpressions=True)
    by_id = {
        o["id"]: {f["key"]: f.get("stringValue", f.get("refValue")) for f in o["fields"]}
        for o in described["pipelineObjects"]
    }
    first, second = by_id[instances[0]], by_id[instances[1]]
    assert first["@status"] == "FINISHED" and first["@attemptCount"] == "1"
    assert first["@scheduledStartTime"] == "2026-01-03T00:00:00" and first["@componentParent"] == "Hello"
    assert first["@headAttempt"] == task["attemptId"] and "@actualEndTime" in first
    assert second["@status"] == "FAILED" and "exit code 1" in second["errorMessage"]

    finished = call(
        "query_objects",
        pipelineId=pid,
        sphere="INSTANCE",
        query={
            "selectors": [
                {"fieldName": "@status", "operator": {"type": "EQ", "values": ["FINISHED"]}},
                {
                    "fieldName": "@scheduledStartTime",
                    "operator": {"type": "BETWEEN", "values": ["2026-01-01T00:00:00", "2026-01-03T23:59:59"]},
                },
            ]
        },
        limit=10,
    )
    assert finished["ids"] == [instances[0]]
    assert call(
        "query_objects",
        pipelineId=pid,
        sphere="INSTANCE",
        query={
            "selectors": [
                {"fieldName": "@componentParent", "operator": {"type": "REF_EQ", "values": ["Hello"]}},
                {
                    "fieldName": "@scheduledStartTime",
                    "operator": {"type": "GE", "values": ["2026-01-04T00:00:00"]},
                },
                {
                    "fieldName": "@scheduledStartTime",
                    "operator": {"type": "LE", "values": ["2026-01-04T00:00:00"]},
                },
            ]
        },
    )["ids"] == [instances[1]]
    attempts = call("query_objects", pipelineId=pid, sphere="ATTEMPT")["ids"]
    assert task["attemptId"] in attempts

    assert (
        call(
            "evaluate_expression",
            pipelineId=pid,
            objectId=instances[0],
            expression="#{myMsg} #{format(@scheduledStartTime,'YYYY-MM-dd')}",
        )["evaluatedExpression"]
        == "yo 2026-01-03"
    )

    call("set_status", pipelineId=pid, objectIds=[instances[1]], status="RERUN")
    rerun = dp.describe_objects(pipelineId=pid, objectIds=[instances[1]])["pipelineObjects"][0]
    assert {"key": "@status", "stringValue": "FAILED"} not in rerun["fields"]

    call("deactivate_pipeline", pipelineId=pid, cancelActive=True)
    call("delete_pipeline", pipelineId=pid)
    assert call("list_pipelines")["pipelineIdList"] == []

    assert used == {xform_name(op) for op in shapes.operation_names()}  # every operation was driven


def test_poll_for_task_hands_out_only_the_callers_tasks(world):
    from tailrace.definition import from_file_dict, to_wire

    alice = client_for(world.server.url, world.keys.create("alice"))
    bob = client_for(world.server.url, world.keys.create("bob"))
    pid = alice.create_pipeline(name="a", uniqueId="a")["pipelineId"]
    alice.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))
    alice.activate_pipeline(pipelineId=pid, startTimestamp=T0)
    world.scheduler.tick()
    # Same worker group, other owner: nothing for bob, and alice's task stays waiting.
    assert "taskObject" not in bob.poll_for_task(workerGroup="wg-1")
    task = alice.poll_for_task(workerGroup="wg-1")["taskObject"]
    assert task["pipelineId"] == pid
    with pytest.raises(bob.exceptions.TaskNotFoundException):
        bob.report_task_progress(taskId=task["taskId"])
    with pytest.raises(bob.exceptions.TaskNotFoundException):
        bob.set_task_status(taskId=task["taskId"], taskStatus="FAILED")
    alice.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
