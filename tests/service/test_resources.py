"""runsOn resources: a resource instance is launched when an activity needs it, served by a local
pool, shut down when its work is done, timed out after terminateAfter."""

from __future__ import annotations

from datetime import timedelta

from service_harness import definition, shell

from tailrace.state import Status

R, A, B = "@Box_2024-03-03T00:00:00", "@A_2024-03-03T00:00:00", "@B_2024-03-03T00:00:00"
BOX = {"id": "Box", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "terminateAfter": "2 hours"}


def pipeline(*, slow=False, **box):
    return definition(
        {**BOX, **box},
        shell("A", runsOn={"ref": "Box"}),
        shell("B", runsOn={"ref": "Box"}, dependsOn={"ref": "A"}),
        start="2024-03-03T00:00:00",
        default={"reportProgressTimeout": "1 day"} if slow else None,
    )


def test_a_resource_is_launched_on_demand_serves_its_activities_and_shuts_down(harness):
    pid = harness.pipeline(pipeline())
    harness.tick()
    res = harness.instance(pid, R)
    assert (res.status, res.queue) == (Status.WAITING_FOR_RUNNER, "@resources")
    assert harness.claim(["wg:*"]) is None  # activities go to the resource's own queue
    host = harness.claim(["@resources"])
    assert host.instance.id == R
    queue = f"res:{pid}/{R}"
    task = harness.claim([queue])
    assert task.instance.id == A
    harness.service.set_task_status(task.task_id, "FINISHED")
    assert harness.instance(pid, R).status is Status.RUNNING  # B still needs it
    harness.service.set_task_status(harness.claim([queue]).task_id, "FINISHED")
    assert harness.instance(pid, R).status is Status.FINISHED
    assert harness.service.report_task_progress(host.task_id) is True  # the pool is told to stop
    harness.service.set_task_status(host.task_id, "CANCELED")  # and its report is ignored
    assert harness.attempts(pid, R)[0].status is Status.FINISHED


def test_terminate_after_times_the_resource_out_and_cancels_what_was_left(harness):
    pid = harness.pipeline(pipeline(slow=True))
    harness.tick()
    host = harness.claim(["@resources"])
    task = harness.claim([f"res:{pid}/{R}"])
    harness.service.report_task_progress(task.task_id)
    harness.advance(timedelta(hours=2))
    assert harness.instance(pid, R).status is Status.TIMEDOUT
    assert harness.instance(pid, B).status is Status.CANCELED
    assert harness.service.report_task_progress(task.task_id) is True  # A is asked to stop
    assert harness.service.report_task_progress(host.task_id) is True
    harness.service.set_task_status(task.task_id, "FAILED", error_message="stopped")
    assert harness.instance(pid, A).status is Status.CANCELED


def test_a_rerun_relaunches_the_resource(harness):
    pid = harness.pipeline(pipeline(slow=True))
    harness.tick()
    harness.claim(["@resources"])
    harness.advance(timedelta(hours=2))
    assert harness.statuses(pid) == {R: "TIMEDOUT", A: "CANCELED", B: "CANCELED"}
    harness.service.set_status(pid, [A, B], "RERUN")
    assert harness.instance(pid, R).status is Status.WAITING_FOR_RUNNER
    assert sorted(harness.run_until_quiet()) == [A, B, R]
    assert harness.statuses(pid) == {R: "FINISHED", A: "FINISHED", B: "FINISHED"}


def test_a_host_that_dies_loses_the_resource_and_another_host_takes_it(harness):
    pid = harness.pipeline(pipeline(reportProgressTimeout="5 minutes"))
    harness.tick()
    harness.claim(["@resources"], runner="host-a")
    harness.advance(timedelta(minutes=6))
    assert harness.instance(pid, R).status is Status.WAITING_FOR_RUNNER
    again = harness.claim(["@resources"], runner="host-b")
    assert again.attempt == 2
