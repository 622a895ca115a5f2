"""Scheduling semantics on a frozen clock: when instances are created and run, backfill order,
dependencies, maxActiveInstances, schedule ends, on-demand runs and re-activation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_harness import T0, definition, of_status, shell

from tailrace.api.aws import tasks as aws_tasks
from tailrace.clock import parse_dp
from tailrace.events.model import PipelineStateChanged
from tailrace.state import PipelineState, Status

DAY = timedelta(days=1)


def test_cron_runs_at_the_start_of_each_period_and_backfills_oldest_first(harness):
    pid = harness.pipeline(definition(shell("A")))
    harness.tick()
    statuses = harness.statuses(pid)
    # start 03-01, now 03-03T12:00: three periods have started
    assert sorted(statuses) == [f"@A_2024-03-0{d}T00:00:00" for d in (1, 2, 3)]
    ran = harness.run_until_quiet()
    assert ran == sorted(statuses)  # oldest first, one at a time (maxActiveInstances 1)


def test_timeseries_runs_at_the_end_of_each_period(harness):
    pid = harness.pipeline(definition(shell("A"), default={"scheduleType": "timeseries"}))
    harness.tick()
    assert sorted(harness.statuses(pid)) == ["@A_2024-03-01T00:00:00", "@A_2024-03-02T00:00:00"]
    harness.clock.set(parse_dp("2024-03-04T00:00:00") - harness.config.lookahead - timedelta(seconds=1))
    harness.tick()
    assert len(harness.statuses(pid)) == 2
    harness.clock.set(parse_dp("2024-03-04T00:00:00") - harness.config.lookahead)
    harness.tick()
    assert harness.statuses(pid)["@A_2024-03-03T00:00:00"] == "WAITING_ON_DEPENDENCIES"


def test_an_instance_is_created_ahead_of_time_and_starts_on_time(harness):
    pid = harness.pipeline(definition(shell("A"), start="2024-03-04T00:00:00"))
    run_at = parse_dp("2024-03-04T00:00:00")
    harness.clock.set(run_at - timedelta(hours=1))
    harness.tick()
    assert harness.statuses(pid) == {}
    harness.clock.set(run_at - harness.config.lookahead / 2)
    harness.tick()
    assert harness.statuses(pid) == {"@A_2024-03-04T00:00:00": "WAITING_ON_DEPENDENCIES"}
    assert harness.claim() is None
    assert harness.scheduler.next_wakeup() == run_at
    harness.clock.set(run_at)
    harness.tick()
    task = harness.claim()
    assert task.instance.id == "@A_2024-03-04T00:00:00"
    assert task.instance.started_at == run_at


def test_calendar_months_step_by_calendar_month(harness):
    pid = harness.pipeline(definition(shell("A"), period="1 month", start="2023-11-30T00:00:00"))
    harness.tick()
    assert sorted(harness.statuses(pid)) == [
        "@A_2023-11-30T00:00:00",
        "@A_2023-12-30T00:00:00",
        "@A_2024-01-30T00:00:00",
        "@A_2024-02-29T00:00:00",  # clamped to the month's last day, then back to the 30th
    ]


@pytest.mark.parametrize(
    ("bound", "expected"), [({"occurrences": "2"}, 2), ({"endDateTime": "2024-03-02T12:00:00"}, 2)]
)
def test_a_schedule_that_ends_finishes_the_pipeline(harness, bound, expected):
    pid = harness.pipeline(definition(shell("A"), **bound))
    harness.run_until_quiet()
    assert len(of_status(harness.statuses(pid), Status.FINISHED)) == expected
    harness.advance(harness.config.finish_check)
    with harness.store.transaction(readonly=True) as tx:
        p = tx.pipelines.get(pid)
    assert p.state is PipelineState.FINISHED and T0 <= p.finished_at <= harness.clock.now()
    assert [e.new for e in harness.events(PipelineStateChanged, pid)][-1] == "FINISHED"


def test_dependencies_run_in_order_within_a_period(harness):
    pid = harness.pipeline(
        definition(
            shell("A"),
            shell("B", dependsOn={"ref": "A"}),
            shell("C", dependsOn=[{"ref": "A"}, {"ref": "B"}]),
            occurrences="1",
        )
    )
    harness.tick()
    assert harness.statuses(pid) == {
        "@A_2024-03-01T00:00:00": "WAITING_FOR_RUNNER",
        "@B_2024-03-01T00:00:00": "WAITING_ON_DEPENDENCIES",
        "@C_2024-03-01T00:00:00": "WAITING_ON_DEPENDENCIES",
    }
    assert harness.run_until_quiet() == [
        "@A_2024-03-01T00:00:00",
        "@B_2024-03-01T00:00:00",
        "@C_2024-03-01T00:00:00",
    ]


def test_an_activity_waits_for_its_input_data_node_and_the_output_waits_for_it(harness):
    pid = harness.pipeline(
        definition(
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in/"},
            {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/out/"},
            shell("A", input={"ref": "In"}, output={"ref": "Out"}),
            occurrences="1",
        )
    )
    harness.tick()
    s = harness.statuses(pid)
    assert s["@In_2024-03-01T00:00:00"] == "FINISHED"  # no precondition: READY at once
    assert s["@A_2024-03-01T00:00:00"] == "WAITING_FOR_RUNNER"
    assert s["@Out_2024-03-01T00:00:00"] == "WAITING_ON_DEPENDENCIES"
    harness.drain()
    assert harness.statuses(pid)["@Out_2024-03-01T00:00:00"] == "FINISHED"


def test_max_active_instances_bounds_concurrent_instances_of_a_component(harness):
    pid = harness.pipeline(definition(shell("A", maxActiveInstances="2")))
    harness.tick()
    first, second = harness.claim(), harness.claim()
    assert (first.instance.id, second.instance.id) == ("@A_2024-03-01T00:00:00", "@A_2024-03-02T00:00:00")
    assert harness.claim() is None
    assert harness.statuses(pid)["@A_2024-03-03T00:00:00"] == "WAITING_ON_DEPENDENCIES"
    harness.service.set_task_status(
        first.task_id, "FINISHED"
    )  # the freed slot goes to the next period at once
    assert harness.claim().instance.id == "@A_2024-03-03T00:00:00"


def test_a_finished_task_starts_its_dependent_without_a_scheduler_tick(harness):
    pid = harness.pipeline(definition(shell("A"), shell("B", dependsOn={"ref": "A"}), occurrences="1"))
    harness.tick()
    task = harness.claim()
    harness.service.set_task_status(task.task_id, "FINISHED")
    assert harness.claim().instance.id == "@B_2024-03-01T00:00:00"
    assert harness.statuses(pid)["@B_2024-03-01T00:00:00"] == "RUNNING"


def test_worker_groups_route_tasks(harness):
    harness.pipeline(definition(shell("A", workerGroup="etl"), shell("B"), occurrences="1"))
    harness.tick()
    assert aws_tasks.poll_for_task(harness.service, "nobody") is None
    etl = aws_tasks.poll_for_task(harness.service, "etl", hostname="h")
    assert etl["attemptId"] == "@A_2024-03-01T00:00:00_Attempt=1"
    fields = {
        f["key"]: f.get("stringValue", f.get("refValue")) for f in etl["objects"][etl["attemptId"]]["fields"]
    }
    assert fields["command"] == "echo A" and fields["@status"] == "RUNNING" and fields["hostname"] == "h"
    assert aws_tasks.poll_for_task(harness.service, "wg")["attemptId"] == "@B_2024-03-01T00:00:00_Attempt=1"


def test_ondemand_runs_once_per_activation(harness):
    file_form = {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"},
            {"id": "A", "type": "ShellCommandActivity", "command": "echo a"},
        ]
    }
    pid = harness.pipeline(file_form)
    harness.run_until_quiet()
    first = harness.statuses(pid)
    assert first == {f"@A_{T0:%Y-%m-%dT%H:%M:%S}": "FINISHED"}
    harness.advance(harness.config.finish_check)
    harness.clock.advance(timedelta(hours=1))
    harness.service.activate(pid)
    harness.run_until_quiet()
    later = T0 + harness.config.finish_check + timedelta(hours=1)
    assert harness.statuses(pid) == {**first, f"@A_{later:%Y-%m-%dT%H:%M:%S}": "FINISHED"}


def test_activation_with_a_later_start_skips_earlier_periods_that_have_not_run(harness):
    pid = harness.pipeline(definition(shell("A")))
    harness.tick()
    task = harness.claim()
    harness.service.set_task_status(task.task_id, "FINISHED")
    harness.service.deactivate(pid, cancel_active=False)
    harness.tick()
    harness.service.activate(pid, start_timestamp=parse_dp("2024-03-03T00:00:00"))
    harness.run_until_quiet()
    s = harness.statuses(pid)
    assert s["@A_2024-03-01T00:00:00"] == "FINISHED"
    assert s["@A_2024-03-02T00:00:00"] == "SKIPPED"
    assert s["@A_2024-03-03T00:00:00"] == "FINISHED"


def test_dry_run_preview_lists_what_activation_would_create(harness):
    pid = harness.pipeline(definition(shell("A"), shell("B", dependsOn={"ref": "A"})), activate=False)
    preview = harness.service.preview_activation(pid)
    assert [w.start.day for w in preview] == [1, 2, 3]
    assert preview[0].instances == ("@A_2024-03-01T00:00:00", "@B_2024-03-01T00:00:00")
    assert harness.statuses(pid) == {}
    later = harness.service.preview_activation(pid, start_timestamp=parse_dp("2024-03-03T00:00:00"))
    assert [w.start.day for w in later] == [3]


def test_a_long_backfill_is_created_in_batches_and_all_runs(harness):
    pid = harness.pipeline(definition(shell("A"), start="2023-12-01T00:00:00"))
    report = harness.tick()
    assert report.windows == 94  # 2023-12-01 .. 2024-03-03, over several transactions
    assert len(harness.run_until_quiet()) == 94
    assert set(harness.statuses(pid).values()) == {"FINISHED"}


def test_the_scheduler_sleeps_until_the_next_due_time(harness):
    harness.pipeline(definition(shell("A")))
    harness.run_until_quiet()
    assert harness.scheduler.next_wakeup() == parse_dp("2024-03-04T00:00:00") - harness.config.lookahead


def test_a_finished_pipeline_runs_again_after_its_end_is_moved_and_it_is_activated(harness):
    from tailrace.definition import from_file_dict

    pid = harness.pipeline(definition(shell("A"), occurrences="2"))
    harness.run_until_quiet()
    with harness.store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(pid).state is PipelineState.FINISHED
    assert not harness.service.put_definition(
        pid, from_file_dict(definition(shell("A"), occurrences="3"))
    ).errored
    harness.service.activate(pid)
    assert harness.run_until_quiet() == ["@A_2024-03-03T00:00:00"]


def test_a_period_blocked_by_a_failure_does_not_hold_back_later_ready_periods(harness):
    pid = harness.pipeline(
        definition(
            shell("A", maximumRetries="0"), shell("B", dependsOn={"ref": "A"}), start="2024-02-28T00:00:00"
        )
    )
    harness.tick()
    failing = {"@A_2024-02-28T00:00:00", "@A_2024-02-29T00:00:00"}
    held = []

    def outcome(task):
        if task.instance.component_id == "B":
            held.append(task)  # B's first ready period keeps running: later B periods must wait
            return "KEEP"
        return "FAILED" if task.instance.id in failing else "FINISHED"

    harness.drain(outcome)
    s = harness.statuses(pid)
    assert [i.instance.id for i in held] == ["@B_2024-03-01T00:00:00"]
    assert s["@B_2024-02-28T00:00:00"] == s["@B_2024-03-02T00:00:00"] == "WAITING_ON_DEPENDENCIES"
    harness.service.set_task_status(held[0].task_id, "FINISHED")
    # The free slot goes to the oldest period that is ready, not to the older ones that wait on
    # their failed A (no cascade: they wait for a rerun).
    assert harness.claim().instance.id == "@B_2024-03-02T00:00:00"


def test_poll_for_task_can_be_limited_to_one_owners_pipelines(harness):
    from tailrace.definition import from_file_dict

    pid = harness.service.create_pipeline("p", "u", owner="alice")
    harness.service.put_definition(pid, from_file_dict(definition(shell("A"), start="2024-03-03T00:00:00")))
    harness.service.activate(pid)
    harness.tick()
    assert aws_tasks.poll_for_task(harness.service, "wg", owner="bob") is None
    assert aws_tasks.poll_for_task(harness.service, "wg", owner="alice")["pipelineId"] == pid
