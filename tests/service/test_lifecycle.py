"""Create, put definition (validation, the rules for active pipelines), activate, deactivate,
delete, tags, and the read operations in the API's shapes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_harness import definition, shell

from tailrace.api.aws import describe as aws
from tailrace.api.aws import tasks as aws_tasks
from tailrace.definition import DefinitionError, from_file_dict
from tailrace.runtime.errors import InvalidRequest, PipelineDeleted
from tailrace.state import PipelineNotFound, PipelineState, TaskNotFound

A3 = "@A_2024-03-03T00:00:00"


def state_of(harness, pid):
    with harness.store.transaction(readonly=True) as tx:
        return tx.pipelines.get(pid)


def test_create_is_idempotent_on_unique_id(harness):
    svc = harness.service
    pid = svc.create_pipeline("logs", "token-1", description="d", tags={"env": "prod"})
    assert svc.create_pipeline("logs", "token-1") == pid
    assert svc.create_pipeline("logs", "token-2") != pid
    with pytest.raises(InvalidRequest, match="already names pipeline"):
        svc.create_pipeline("other", "token-1")
    with pytest.raises(InvalidRequest, match="at most 10 tags"):
        svc.create_pipeline("x", "y", tags={f"k{i}": "v" for i in range(11)})
    (desc,) = aws.describe_pipelines(svc, [pid])
    fields = {f["key"]: f["stringValue"] for f in desc["fields"]}
    assert fields["@pipelineState"] == "PENDING" and fields["uniqueId"] == "token-1"
    assert desc["tags"] == [{"key": "env", "value": "prod"}] and desc["description"] == "d"


def test_a_definition_with_errors_is_refused_with_every_error_and_not_saved(harness):
    pid = harness.service.create_pipeline("p", "u")
    bad = definition(
        {"id": "A", "type": "ShellCommandActivty", "command": "x"},
        {"id": "B", "type": "ShellCommandActivity", "dependsOn": {"ref": "Nope"}},
    )
    report = harness.service.put_definition(pid, from_file_dict(bad))
    aws = report.to_aws()
    assert aws["errored"] is True
    by_id = {e["id"]: e["errors"] for e in aws["validationErrors"]}
    assert set(by_id) >= {"A", "B"} and any("ShellCommandActivity" in m for m in by_id["A"])
    assert state_of(harness, pid).latest_version is None
    with pytest.raises(InvalidRequest, match="no definition"):
        harness.service.activate(pid)


def test_the_wire_form_round_trips_and_validate_only_saves_nothing(harness):
    from tailrace.definition import to_wire

    pid = harness.service.create_pipeline("p", "u")
    wire = to_wire(from_file_dict(definition(shell("A"))))
    assert not harness.service.put_definition(pid, wire, validate_only=True).errored
    assert harness.service.get_definition(pid)["pipelineObjects"] == []
    assert not harness.service.put_definition(pid, wire).errored
    got = harness.service.get_definition(pid)
    assert got["pipelineObjects"] == wire["pipelineObjects"]
    assert harness.service.get_definition(pid, "active")["pipelineObjects"] == []
    malformed = harness.service.put_definition(
        pid, {"pipelineObjects": [{"id": "A", "fields": [{"key": "x"}]}]}
    )
    assert malformed.errored


def test_activation_refuses_an_invalid_parameter_value(harness):
    file_form = definition(shell("A", command="echo #{myWord}"))
    file_form["parameters"] = [{"id": "myWord", "type": "Integer"}]
    file_form["values"] = {"myWord": "1"}
    pid = harness.pipeline(file_form, activate=False)
    with pytest.raises(DefinitionError, match="myWord"):
        harness.service.activate(pid, parameter_values={"myWord": "not-a-number"})
    harness.service.activate(pid, parameter_values={"myWord": "42"})
    harness.tick()
    task = aws_tasks.poll_for_task(harness.service, "wg")
    fields = {f["key"]: f.get("stringValue") for f in task["objects"][task["attemptId"]]["fields"]}
    assert fields["command"] == "echo 42"
    assert harness.service.get_definition(pid, "active")["parameterValues"] == [
        {"id": "myWord", "stringValue": "42"}
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["objects"].pop(3), None),  # remove B
        (lambda d: d["objects"][1].update(period="2 days"), "period"),
        (lambda d: d["objects"][1].update(startDateTime="2024-02-01T00:00:00"), "startDateTime"),
        (lambda d: d["objects"][3].update(dependsOn={"ref": "C"}), "dependsOn"),
        (lambda d: d["objects"].append(shell("New", output={"ref": "Out"})), "output"),
    ],
)
def test_an_active_pipeline_refuses_forbidden_changes_and_keeps_running(harness, change, field):
    out = {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/o/"}
    file_form = definition(shell("A"), shell("B", dependsOn={"ref": "A"}), shell("C"), out)
    pid = harness.pipeline(file_form)
    harness.tick()
    before = state_of(harness, pid)
    edited = definition(shell("A"), shell("B", dependsOn={"ref": "A"}), shell("C"), out)
    change(edited)
    report = harness.service.put_definition(pid, from_file_dict(edited))
    assert report.errored
    problems = [p for p in report.errors]
    assert field is None or any(p.field == field for p in problems), [str(p) for p in problems]
    assert all("active pipeline" in p.message or "existing object" in p.message for p in problems)
    after = state_of(harness, pid)
    assert (after.latest_version, after.active_version, after.state) == (
        before.latest_version,
        before.active_version,
        PipelineState.SCHEDULED,
    )
    assert len(harness.run_until_quiet()) == 9


def test_an_allowed_change_becomes_latest_and_runs_after_reactivation(harness):
    pid = harness.pipeline(definition(shell("A", command="echo old")))
    harness.run_until_quiet()
    report = harness.service.put_definition(
        pid, from_file_dict(definition(shell("A", command="echo new"), shell("N")))
    )
    assert not report.errored
    p = state_of(harness, pid)
    assert (p.latest_version, p.active_version) == (2, 1)
    harness.clock.advance(timedelta(hours=12))
    harness.tick()
    old = aws_tasks.poll_for_task(harness.service, "wg")
    assert {f["key"]: f.get("stringValue") for f in old["objects"][old["attemptId"]]["fields"]}[
        "command"
    ] == "echo old"
    harness.service.set_task_status(old["taskId"], "FINISHED")
    harness.service.activate(pid)
    assert state_of(harness, pid).active_version == 2
    harness.clock.advance(timedelta(days=1))
    harness.tick()
    new = [aws_tasks.poll_for_task(harness.service, "wg") for _ in range(2)]
    commands = sorted(
        {f["key"]: f.get("stringValue") for f in t["objects"][t["attemptId"]]["fields"]}["command"]
        for t in new
    )
    assert commands == ["echo N", "echo new"]


def test_deactivate_cancels_active_work_by_default(harness):
    pid = harness.pipeline(definition(shell("A"), shell("B", dependsOn={"ref": "A"})))
    harness.tick()
    task = harness.claim()
    harness.service.deactivate(pid)
    assert state_of(harness, pid).state is PipelineState.DEACTIVATING
    assert harness.service.report_task_progress(task.task_id) is True
    harness.service.set_task_status(task.task_id, "FAILED", error_message="canceled")
    harness.tick()
    assert state_of(harness, pid).state is PipelineState.INACTIVE
    assert set(harness.statuses(pid).values()) == {"CANCELED"}
    assert harness.claim() is None


def test_deactivate_without_cancel_lets_running_work_finish_and_reactivation_resumes(harness):
    pid = harness.pipeline(definition(shell("A"), start="2024-03-02T00:00:00"))
    harness.tick()
    task = harness.claim()
    harness.service.deactivate(pid, cancel_active=False)
    assert harness.service.report_task_progress(task.task_id) is False
    harness.service.set_task_status(task.task_id, "FINISHED")
    assert harness.claim() is None  # an inactive pipeline hands out no work
    harness.tick()
    assert state_of(harness, pid).state is PipelineState.INACTIVE
    harness.service.activate(pid)
    assert harness.run_until_quiet() == [A3]
    assert harness.statuses(pid) == {"@A_2024-03-02T00:00:00": "FINISHED", A3: "FINISHED"}


def test_delete_removes_the_pipeline_and_drops_its_runners(harness):
    pid = harness.pipeline(definition(shell("A")))
    harness.tick()
    task = harness.claim()
    harness.service.delete_pipeline(pid)
    with pytest.raises(PipelineDeleted):
        aws.describe_pipelines(harness.service, [pid])
    with pytest.raises(TaskNotFound):
        harness.service.report_task_progress(task.task_id)
    with pytest.raises(PipelineNotFound) as caught:
        aws.describe_pipelines(harness.service, ["df-NEVER"])
    assert not isinstance(caught.value, PipelineDeleted)
    assert aws.list_pipelines(harness.service)["pipelineIdList"] == []


def test_list_pipelines_pages_with_a_marker(harness):
    ids = sorted(harness.service.create_pipeline(f"p{i}", f"u{i}") for i in range(5))
    first = aws.list_pipelines(harness.service, limit=2)
    assert [p["id"] for p in first["pipelineIdList"]] == ids[:2] and first["hasMoreResults"]
    rest = aws.list_pipelines(harness.service, marker=first["marker"], limit=10)
    assert [p["id"] for p in rest["pipelineIdList"]] == ids[2:] and not rest["hasMoreResults"]
    assert "marker" not in rest


def test_tags_are_added_and_removed(harness):
    pid = harness.service.create_pipeline("p", "u", tags={"a": "1"})
    harness.service.add_tags(pid, {"b": "2"})
    harness.service.remove_tags(pid, ["a"])
    assert aws.describe_pipelines(harness.service, [pid])[0]["tags"] == [{"key": "b", "value": "2"}]
    with pytest.raises(InvalidRequest):
        harness.service.add_tags(pid, {f"k{i}": "v" for i in range(10)})


def test_query_objects_filters_after_paging_and_describe_objects_shows_runtime_fields(harness):
    pid = harness.pipeline(definition(shell("A"), shell("B", dependsOn={"ref": "A"})))
    harness.run_until_quiet(lambda t: "FAILED" if t.instance.id == "@A_2024-03-02T00:00:00" else "FINISHED")
    svc = harness.service
    failed = aws.query_objects(
        svc,
        pid,
        "INSTANCE",
        selectors=[{"fieldName": "@status", "operator": {"type": "EQ", "values": ["FAILED"]}}],
    )
    assert failed["ids"] == [] and failed["hasMoreResults"] is False  # retries pending: still waiting
    page = aws.query_objects(svc, pid, "INSTANCE", limit=2)
    assert len(page["ids"]) == 2 and page["hasMoreResults"] and page["marker"] == page["ids"][-1]
    a_only = aws.query_objects(
        svc,
        pid,
        "INSTANCE",
        selectors=[{"fieldName": "@componentParent", "operator": {"type": "REF_EQ", "values": ["A"]}}],
    )
    assert a_only["ids"] == [f"@A_2024-03-0{d}T00:00:00" for d in (1, 2, 3)]
    window = aws.query_objects(
        svc,
        pid,
        "INSTANCE",
        selectors=[
            {
                "fieldName": "@scheduledStartTime",
                "operator": {"type": "BETWEEN", "values": ["2024-03-02T00:00:00", "2024-03-03T00:00:00"]},
            }
        ],
    )
    assert len(window["ids"]) == 4
    attempts = aws.query_objects(svc, pid, "ATTEMPT")["ids"]
    assert "@A_2024-03-02T00:00:00_Attempt=1" in attempts
    assert aws.query_objects(svc, pid, "COMPONENT")["ids"] == ["A", "B", "Default", "Every"]
    objs = aws.describe_objects(svc, pid, ["@A_2024-03-02T00:00:00", "@A_2024-03-02T00:00:00_Attempt=1", "A"])
    inst, att, comp = objs["pipelineObjects"]
    f = {x["key"]: x.get("stringValue", x.get("refValue")) for x in inst["fields"]}
    assert f["@status"] == "WAITING_FOR_RUNNER" and f["@componentParent"] == "A" and f["@triesLeft"] == "2"
    assert f["@headAttempt"] == "@A_2024-03-02T00:00:00_Attempt=1" and f["command"] == "echo A"
    g = {x["key"]: x.get("stringValue", x.get("refValue")) for x in att["fields"]}
    assert (
        g["@status"] == "FAILED"
        and g["errorMessage"] == "boom"
        and g["@instanceParent"] == "@A_2024-03-02T00:00:00"
    )
    assert g["@logLocation"].endswith("/@A_2024-03-02T00:00:00/@A_2024-03-02T00:00:00_Attempt=1/attempt.log")
    h = {x["key"]: x.get("stringValue", x.get("refValue")) for x in comp["fields"]}
    # A component as written: workerGroup is Default's, shown only with evaluateExpressions.
    assert h["@sphere"] == "COMPONENT" and h["type"] == "ShellCommandActivity" and "workerGroup" not in h


def test_evaluate_expression_on_instances_and_components(harness):
    pid = harness.pipeline(definition(shell("A", myDir="s3://b/#{format(@scheduledStartTime,'YYYY-MM-dd')}")))
    harness.tick()
    svc = harness.service
    assert (
        svc.evaluate_expression(pid, "@A_2024-03-02T00:00:00", "#{myDir} #{@status}")
        == "s3://b/2024-03-02 WAITING_ON_DEPENDENCIES"
    )
    assert svc.evaluate_expression(pid, "Every", "#{period}") == "1 day"
    with pytest.raises(InvalidRequest):
        svc.evaluate_expression(pid, "Nope", "#{1}")


def test_task_runner_heartbeats_are_recorded(harness):
    assert harness.service.report_task_runner_heartbeat("runner-1", worker_group="wg", hostname="h1") is False
    harness.clock.advance(timedelta(minutes=15))
    harness.service.report_task_runner_heartbeat("runner-1", worker_group="wg", hostname="h2")
    with harness.store.transaction(readonly=True) as tx:
        (runner,) = tx.runners.list()
    assert (runner.hostname, runner.heartbeat_at) == ("h2", harness.clock.now())
