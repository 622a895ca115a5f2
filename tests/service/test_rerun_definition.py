"""RERUN after a corrected definition (edit -> put -> activate -> rerun, as on AWS): the rerun
runs the ACTIVE definition's fields, keeps its period and its place in the graph."""

from __future__ import annotations

from service_harness import definition, shell

from tailrace.api.aws import tasks as aws_tasks
from tailrace.definition import from_file_dict

A1, B1 = "@A_2024-03-03T00:00:00", "@B_2024-03-03T00:00:00"


def _defn(command: str, **more):
    return definition(
        shell("A", command=command, **{"maximumRetries": "0", **more}),
        shell("B", dependsOn={"ref": "A"}),
        default={"failureAndRerunMode": "cascade"},
        start="2024-03-03T00:00:00",
    )


def _command(task) -> str:
    fields = task["objects"][task["attemptId"]]["fields"]
    return next(f["stringValue"] for f in fields if f["key"] == "command")


def test_a_rerun_after_a_corrected_definition_runs_the_active_one(harness):
    pid = harness.pipeline(_defn("exit 1  # broken"))
    harness.tick()
    task = aws_tasks.poll_for_task(harness.service, "wg")
    assert _command(task) == "exit 1  # broken"
    harness.service.set_task_status(task["taskId"], "FAILED", error_message="exit 1")
    harness.run_until_quiet(lambda t: "FAILED")
    assert harness.statuses(pid) == {A1: "FAILED", B1: "CASCADE_FAILED"}
    old_version = harness.instance(pid, A1).definition_version

    # Put alone changes nothing for existing instances: the active definition is still the old one.
    fixed = _defn("echo fixed", workerGroup="wg", maximumRetries="2")
    assert not harness.service.put_definition(pid, from_file_dict(fixed)).errored
    harness.service.activate(pid)
    harness.service.set_status(pid, [A1], "RERUN")
    inst = harness.instance(pid, A1)
    assert inst.definition_version > old_version and inst.tries_left == 2
    assert inst.scheduled_start.isoformat().startswith("2024-03-03T00:00:00")
    harness.tick()
    task = aws_tasks.poll_for_task(harness.service, "wg")
    assert task["attemptId"].startswith(A1) and _command(task) == "echo fixed"
    harness.service.set_task_status(task["taskId"], "FINISHED")
    harness.run_until_quiet()
    assert harness.statuses(pid) == {A1: "FINISHED", B1: "FINISHED"}  # the cascade came back too


def test_a_rerun_without_reactivation_keeps_the_version_it_ran(harness):
    pid = harness.pipeline(_defn("exit 1"))
    harness.run_until_quiet(lambda t: "FAILED")
    version = harness.instance(pid, A1).definition_version
    assert not harness.service.put_definition(pid, from_file_dict(_defn("echo fixed"))).errored
    harness.service.set_status(pid, [A1], "RERUN")  # put but not activated: the active one runs
    assert harness.instance(pid, A1).definition_version == version
    harness.tick()
    assert _command(aws_tasks.poll_for_task(harness.service, "wg")) == "exit 1"
