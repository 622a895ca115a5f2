"""Retries, timeouts, leases, preconditions, cascade failure and the rerun rules, SetStatus."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_harness import definition, shell

from tailrace.api.aws import describe as aws
from tailrace.errors import TailraceError
from tailrace.runtime.errors import InvalidRequest
from tailrace.state import Status, TaskNotFound

MIN = timedelta(minutes=1)
A1, B1, C1 = "@A_2024-03-03T00:00:00", "@B_2024-03-03T00:00:00", "@C_2024-03-03T00:00:00"


def one_period(*objects, **default):
    """One period has started (the next starts tomorrow): the pipeline stays SCHEDULED."""
    return definition(*objects, default=default or None, start="2024-03-03T00:00:00")


def test_a_failed_attempt_is_retried_after_retry_delay_until_retries_run_out(harness):
    pid = harness.pipeline(one_period(shell("A", maximumRetries="2", retryDelay="5 minutes")))
    harness.tick()
    for n in (1, 2, 3):
        task = harness.claim()
        assert task.attempt_id == f"{A1}_Attempt={n}"
        harness.service.set_task_status(task.task_id, "FAILED", error_id="E", error_message=f"fail {n}")
        if n < 3:
            inst = harness.instance(pid, A1)
            assert (inst.status, inst.tries_left) == (Status.WAITING_FOR_RUNNER, 2 - n)
            assert harness.claim() is None  # not before retryDelay
            harness.advance(timedelta(minutes=5))
    inst = harness.instance(pid, A1)
    assert inst.status is Status.FAILED and inst.error_message == "fail 3"
    attempts = harness.attempts(pid, A1)
    assert [(a.status, a.error_message) for a in attempts] == [
        (Status.FAILED, f"fail {n}") for n in (1, 2, 3)
    ]


def test_attempt_timeout_times_the_attempt_out_and_retries(harness):
    pid = harness.pipeline(
        one_period(
            shell("A", attemptTimeout="30 minutes", retryDelay="2 minutes", reportProgressTimeout="1 hour")
        )
    )
    harness.tick()
    task = harness.claim()
    harness.advance(timedelta(minutes=29))
    assert harness.service.report_task_progress(task.task_id) is False
    harness.advance(timedelta(minutes=1))
    (first,) = harness.attempts(pid, A1)
    assert first.status is Status.TIMEDOUT and "attemptTimeout" in first.error_message
    assert harness.service.report_task_progress(task.task_id) is True  # the runner hears "canceled"
    harness.service.set_task_status(task.task_id, "FINISHED")  # too late: ignored
    assert harness.instance(pid, A1).status is Status.WAITING_FOR_RUNNER
    harness.advance(timedelta(minutes=2))
    assert harness.claim().attempt == 2


def test_a_runner_that_stops_heartbeating_loses_its_lease_and_its_late_reports_are_refused(harness):
    pid = harness.pipeline(one_period(shell("A", reportProgressTimeout="10 minutes", retryDelay="2 minutes")))
    harness.tick()
    task = harness.claim()
    harness.advance(timedelta(minutes=9))
    harness.service.report_task_progress(task.task_id, {"percentComplete": "50"})  # lease now runs to +19 min
    harness.advance(timedelta(minutes=9))
    assert harness.instance(pid, A1).status is Status.RUNNING
    harness.advance(timedelta(minutes=1, seconds=1))
    (lost,) = harness.attempts(pid, A1)
    assert lost.status is Status.FAILED and lost.error_id == "LeaseExpired"
    assert lost.progress == {"percentComplete": "50"}
    with pytest.raises(TaskNotFound):
        harness.service.report_task_progress(task.task_id)
    with pytest.raises(TaskNotFound):
        harness.service.set_task_status(task.task_id, "FINISHED")
    again = harness.claim()  # handed out again at once: the work did not fail, its runner vanished
    assert again.attempt == 2
    harness.service.set_task_status(again.task_id, "FINISHED")
    assert [a.status for a in harness.attempts(pid, A1)] == [Status.FAILED, Status.FINISHED]


def test_a_late_heartbeat_expires_the_lease_itself(harness):
    pid = harness.pipeline(one_period(shell("A", reportProgressTimeout="10 minutes")))
    harness.tick()
    task = harness.claim()
    harness.clock.advance(timedelta(minutes=11))  # no scheduler tick in between
    with pytest.raises(TaskNotFound, match="lease expired"):
        harness.service.report_task_progress(task.task_id)
    assert harness.attempts(pid, A1)[0].error_id == "LeaseExpired"
    assert harness.instance(pid, A1).status is Status.WAITING_FOR_RUNNER


def test_a_runner_that_gives_a_task_back_does_not_use_up_a_try(harness):
    pid = harness.pipeline(one_period(shell("A", maximumRetries="0")))
    harness.tick()
    task = harness.claim()
    harness.service.set_task_status(task.task_id, "CANCELED", error_message="runner stopping")
    inst = harness.instance(pid, A1)
    assert inst.status is Status.WAITING_FOR_RUNNER and inst.tries_left == 0
    harness.service.set_task_status(harness.claim().task_id, "FINISHED")
    assert harness.instance(pid, A1).status is Status.FINISHED


def test_task_status_is_checked(harness):
    harness.pipeline(one_period(shell("A")))
    harness.tick()
    task = harness.claim()
    with pytest.raises(TailraceError, match="taskStatus"):
        harness.service.set_task_status(task.task_id, "DONE")
    with pytest.raises(TailraceError, match="Service_"):
        harness.service.set_task_status(task.task_id, "FAILED", error_id="Service_X")
    with pytest.raises(TaskNotFound):
        harness.service.set_task_status("no-such-task", "FINISHED")


def precondition_pipeline(**pre):
    return one_period(
        {"id": "Ready", "type": "ShellCommandPrecondition", "command": "test -e /x", **pre},
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in/", "precondition": {"ref": "Ready"}},
        shell("A", input={"ref": "In"}),
    )


def test_a_false_precondition_is_checked_again_until_it_holds(harness):
    pid = harness.pipeline(precondition_pipeline(retryDelay="10 minutes", preconditionTimeout="1 hour"))
    harness.tick()
    check = harness.claim()
    assert check.instance.category == "PRECONDITION" and check.instance.queue == "@service"
    harness.service.set_task_status(check.task_id, "FALSE", error_message="not there yet")
    assert harness.statuses(pid)["@In_2024-03-03T00:00:00"] == "WAITING_ON_DEPENDENCIES"
    assert harness.claim() is None
    harness.advance(timedelta(minutes=10))
    check = harness.claim()
    assert check.attempt == 2 and check.instance.tries_left == 3  # FALSE does not use up retries
    harness.service.set_task_status(check.task_id, "FINISHED")
    s = harness.statuses(pid)
    assert s["@In_2024-03-03T00:00:00"] == "FINISHED" and s[A1] == "WAITING_FOR_RUNNER"


def test_a_precondition_fails_after_precondition_timeout_and_cascades(harness):
    pid = harness.pipeline(
        one_period(
            {
                "id": "Ready",
                "type": "ShellCommandPrecondition",
                "command": "false",
                "retryDelay": "20 minutes",
                "preconditionTimeout": "30 minutes",
            },
            {
                "id": "In",
                "type": "S3DataNode",
                "directoryPath": "s3://b/in/",
                "precondition": {"ref": "Ready"},
            },
            shell("A", input={"ref": "In"}),
            failureAndRerunMode="cascade",
        )
    )
    harness.tick()
    for _ in range(2):
        check = harness.claim()
        harness.service.set_task_status(check.task_id, "FALSE")
        harness.advance(timedelta(minutes=20))
    s = harness.statuses(pid)
    assert s["@Ready_2024-03-03T00:00:00"] == "FAILED"
    assert s["@In_2024-03-03T00:00:00"] == "CASCADE_FAILED" and s[A1] == "CASCADE_FAILED"
    assert harness.instance(pid, A1).cascade_failed_on == "@Ready_2024-03-03T00:00:00"


def chain(mode):
    return one_period(
        shell("A", maximumRetries="0"),
        shell("B", dependsOn={"ref": "A"}),
        shell("C", dependsOn={"ref": "B"}),
        failureAndRerunMode=mode,
    )


def test_without_cascade_a_failure_leaves_its_consumers_waiting(harness):
    pid = harness.pipeline(chain("none"))
    harness.run_until_quiet(lambda t: "FAILED")
    assert harness.statuses(pid) == {
        A1: "FAILED",
        B1: "WAITING_ON_DEPENDENCIES",
        C1: "WAITING_ON_DEPENDENCIES",
    }
    described = aws.describe_objects(harness.service, pid, [B1])["pipelineObjects"][0]["fields"]
    assert {"key": "@waitingOn", "refValue": A1} in described


def test_cascade_fails_every_consumer_and_a_rerun_brings_them_back(harness):
    pid = harness.pipeline(chain("cascade"))
    harness.run_until_quiet(lambda t: "FAILED")
    assert harness.statuses(pid) == {A1: "FAILED", B1: "CASCADE_FAILED", C1: "CASCADE_FAILED"}
    assert harness.instance(pid, C1).cascade_failed_on == A1
    harness.service.set_status(pid, [A1], "RERUN")
    assert harness.statuses(pid) == {
        A1: "WAITING_FOR_RUNNER",
        B1: "WAITING_ON_DEPENDENCIES",
        C1: "WAITING_ON_DEPENDENCIES",
    }
    assert harness.run_until_quiet() == [A1, B1, C1]
    assert harness.instance(pid, A1).reruns == 1


def test_a_rerun_consumer_fails_back_when_another_dependency_is_still_failed(harness):
    pid = harness.pipeline(
        one_period(
            shell("A", maximumRetries="0"),
            shell("X", maximumRetries="0"),
            shell("C", dependsOn=[{"ref": "A"}, {"ref": "X"}]),
            failureAndRerunMode="cascade",
        )
    )
    harness.run_until_quiet(lambda t: "FAILED")
    harness.service.set_status(pid, [A1], "RERUN")
    harness.run_until_quiet()
    s = harness.statuses(pid)
    assert s[A1] == "FINISHED" and s["@X_2024-03-03T00:00:00"] == "FAILED" and s[C1] == "CASCADE_FAILED"


def test_try_cancel_and_mark_finished(harness):
    pid = harness.pipeline(chain("none"))
    harness.tick()
    task = harness.claim()
    harness.service.set_status(pid, [A1], "TRY_CANCEL")
    assert harness.instance(pid, A1).status is Status.RUNNING
    assert harness.service.report_task_progress(task.task_id) is True
    harness.service.set_task_status(task.task_id, "FAILED", error_message="stopped")
    assert harness.instance(pid, A1).status is Status.CANCELED
    harness.service.set_status(pid, [C1], "TRY_CANCEL")  # waiting: canceled at once
    assert harness.instance(pid, C1).status is Status.CANCELED
    harness.service.set_status(pid, [A1], "MARK_FINISHED")
    assert harness.statuses(pid)[B1] == "WAITING_FOR_RUNNER"


def test_set_status_rejects_bad_requests(harness):
    pid = harness.pipeline(chain("none"))
    harness.tick()
    with pytest.raises(InvalidRequest, match="status must be one of"):
        harness.service.set_status(pid, [A1], "EXPLODE")
    with pytest.raises(InvalidRequest, match="no object"):
        harness.service.set_status(pid, ["@nope"], "RERUN")
    with pytest.raises(InvalidRequest, match="mix"):
        harness.service.set_status(pid, [A1, "A"], "RERUN")
    with pytest.raises(InvalidRequest, match="only ended instances"):
        harness.service.set_status(pid, [A1], "RERUN")
    with pytest.raises(InvalidRequest, match="applies to components"):
        harness.service.set_status(pid, [A1], "PAUSE")


def test_pause_and_resume_a_component(harness):
    pid = harness.pipeline(definition(shell("A"), shell("B")))
    harness.tick()
    harness.service.set_status(pid, ["A"], "PAUSE")
    assert set(harness.run_until_quiet()) == {f"@B_2024-03-0{d}T00:00:00" for d in (1, 2, 3)}
    assert {s for i, s in harness.statuses(pid).items() if i.startswith("@A")} == {"PAUSED"}
    harness.clock.set(harness.clock.now() + timedelta(hours=12))
    harness.tick()
    assert harness.statuses(pid)["@A_2024-03-04T00:00:00"] == "PAUSED"  # new periods are created paused
    harness.service.set_status(pid, ["A"], "RESUME")
    assert len(harness.run_until_quiet()) == 5  # A's four periods, and B's fourth
    assert set(harness.statuses(pid).values()) == {"FINISHED"}
