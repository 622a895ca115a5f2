"""onSuccess / onFail / onLateAction: SnsAlarm evaluated against the triggering instance and
recorded as an event; Terminate cancels late work."""

from __future__ import annotations

from datetime import timedelta

from service_harness import definition, shell

from tailrace.events.model import ActionFired
from tailrace.state import Status

A = "@A_2024-03-03T00:00:00"
ALARM = {
    "id": "Alarm",
    "type": "SnsAlarm",
    "topicArn": "arn:aws:sns:us-east-1:123456789012:ops",
    "role": "DataPipelineDefaultRole",
    "subject": "#{node.name} at #{node.@scheduledStartTime}",
    "message": "status #{node.@status} for #{node.@scheduledStartTime}..#{node.@scheduledEndTime}",
}


def pipeline(*objects):
    return definition(ALARM, *objects, start="2024-03-03T00:00:00")


def fired(harness, pid):
    return harness.events(ActionFired, pid)


def test_on_success_and_on_fail_fire_with_the_node_evaluated(harness):
    pid = harness.pipeline(
        pipeline(
            shell("A", onSuccess={"ref": "Alarm"}),
            shell(
                "B",
                onFail={"ref": "Alarm"},
                onSuccess={"ref": "Alarm"},
                maximumRetries="1",
                retryDelay="2 minutes",
            ),
        )
    )
    harness.tick()
    harness.drain(lambda t: "FINISHED" if t.instance.component_id == "A" else "FAILED")
    assert [a.node for a in fired(harness, pid)] == [A]
    harness.advance(timedelta(minutes=2))
    harness.drain(lambda t: "FAILED")  # the last try: now onFail fires, once
    events = fired(harness, pid)
    assert [(a.trigger, a.node) for a in events] == [
        ("onSuccess", A),
        ("onFail", "@B_2024-03-03T00:00:00"),
    ]
    first = events[0]
    assert (first.action_id, first.action_type, first.trigger, first.node) == (
        "Alarm",
        "SnsAlarm",
        "onSuccess",
        A,
    )
    assert first.subject == "A at 2024-03-03T00:00:00"
    assert first.message == "status FINISHED for 2024-03-03T00:00:00..2024-03-04T00:00:00"
    assert first.topic_arn == "arn:aws:sns:us-east-1:123456789012:ops"
    assert first.owner is not None and first.pipeline_id == pid
    assert events[1].message.startswith("status FAILED")
    written = harness.storage.read_bytes(
        f"{harness.home.resolve().as_posix()}/logs/{pid}/A/{A}/actions.log"
    ).decode()
    assert (
        written
        == "2024-03-03T12:00:00 onSuccess SnsAlarm 'Alarm' -> arn:aws:sns:us-east-1:123456789012:ops: "
        "A at 2024-03-03T00:00:00 | status FINISHED for 2024-03-03T00:00:00..2024-03-04T00:00:00\n"
    )


def test_a_late_action_fires_while_the_work_is_still_waiting(harness):
    pid = harness.pipeline(
        pipeline(
            shell("Up", maximumRetries="0"),
            shell("A", dependsOn={"ref": "Up"}, lateAfterTimeout="13 hours", onLateAction={"ref": "Alarm"}),
        )
    )
    harness.tick()
    upstream = harness.claim()  # Up runs and never ends within the deadline; A waits on it
    harness.service.report_task_progress(upstream.task_id)
    harness.advance(timedelta(minutes=59))
    assert fired(harness, pid) == []
    harness.advance(timedelta(minutes=1))  # 13 h after the scheduled start
    (late,) = fired(harness, pid)
    assert late.trigger == "onLateAction" and late.node == A
    assert late.message == "status WAITING_ON_DEPENDENCIES for 2024-03-03T00:00:00..2024-03-04T00:00:00"
    harness.advance(timedelta(hours=1))
    assert len(fired(harness, pid)) == 1  # once


def test_a_late_action_fires_while_the_work_runs_but_not_after_it_finished(harness):
    pid = harness.pipeline(
        pipeline(
            shell(
                "A", lateAfterTimeout="13 hours", onLateAction={"ref": "Alarm"}, reportProgressTimeout="1 day"
            ),
            shell("B", lateAfterTimeout="13 hours", onLateAction={"ref": "Alarm"}),
        )
    )
    harness.tick()
    running = harness.claim()
    assert running.instance.id == A
    harness.service.set_task_status(harness.claim().task_id, "FINISHED")  # B finishes in time
    harness.advance(timedelta(hours=1))
    assert [(e.node, e.message.split(" for")[0]) for e in fired(harness, pid)] == [(A, "status RUNNING")]


def test_terminate_cancels_late_work(harness):
    terminate = {"id": "Stop", "type": "Terminate"}
    pid = harness.pipeline(
        pipeline(
            terminate,
            shell("Up", reportProgressTimeout="1 day"),
            shell("A", dependsOn={"ref": "Up"}, lateAfterTimeout="13 hours", onLateAction={"ref": "Stop"}),
            shell(
                "R", lateAfterTimeout="13 hours", onLateAction={"ref": "Stop"}, reportProgressTimeout="1 day"
            ),
        )
    )
    harness.tick()
    tasks = {t.instance.component_id: t for t in (harness.claim(), harness.claim())}
    r = tasks["R"]
    assert set(tasks) == {"Up", "R"}
    harness.advance(timedelta(hours=1))
    assert harness.instance(pid, A).status is Status.CANCELED
    assert harness.service.report_task_progress(r.task_id) is True  # the running one is told to stop
    harness.service.set_task_status(r.task_id, "FAILED", error_message="terminated")
    assert harness.instance(pid, "@R_2024-03-03T00:00:00").status is Status.CANCELED
    assert {e.action_type for e in fired(harness, pid)} == {"Terminate"}
