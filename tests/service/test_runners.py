"""Embedded task runners (threads, as inside `tailrace up`) running real attempts: shell
commands, logs under pipelineLogUri or the data directory, resource pools, a clean stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from service_harness import definition, shell

from tailrace.runtime.runners import RunnerConfig, ServiceProcess
from tailrace.state import Status
from tailrace.storage import Storage


def wait_until(predicate, timeout=30.0, what="the condition"):
    """Wait for work done by other threads (never for a schedule: the clock is frozen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def process_for(harness):
    started = []

    def make(**config):
        storage = Storage(home=harness.home)
        defaults = dict(workers=2, poll_interval=0.05, grace=0.5, pool_size=2)
        defaults.update(config)
        proc = ServiceProcess(
            service=harness.service, storage=storage, home=harness.home, config=RunnerConfig(**defaults)
        )
        started.append(proc)
        return proc, storage

    yield make
    for proc in started:
        proc.stop(10)


def all_finished(harness, pid, count):
    def check():
        statuses = harness.statuses(pid)
        return len(statuses) == count and set(statuses.values()) == {"FINISHED"}

    return check


def test_embedded_runners_run_real_commands_and_keep_each_attempts_log(harness, process_for):
    pid = harness.pipeline(
        definition(
            shell("A", command="echo out-#{format(@scheduledStartTime,'YYYY-MM-dd')}; echo err-line >&2"),
            shell("B", command="echo b", dependsOn={"ref": "A"}),
            start="2024-03-02T00:00:00",
        )
    )
    proc, storage = process_for()
    proc.start()
    wait_until(all_finished(harness, pid, 4), what="4 FINISHED instances")
    (attempt,) = harness.attempts(pid, "@A_2024-03-02T00:00:00")
    assert attempt.log_location == (
        f"{harness.home.resolve().as_posix()}/logs/{pid}/A/@A_2024-03-02T00:00:00/@A_2024-03-02T00:00:00_Attempt=1/attempt.log"
        if harness.home.is_absolute()
        else attempt.log_location
    )
    text = storage.read_bytes(attempt.log_location).decode()
    assert "out-2024-03-02" in text and "[stderr] err-line" in text and text.endswith("status: FINISHED\n")
    assert attempt.runner_id.startswith("tailrace@") and attempt.hostname


def test_a_failing_command_keeps_its_error_and_log_under_pipeline_log_uri(harness, process_for):
    pid = harness.pipeline(
        definition(
            shell("A", command="echo trying; exit 3", maximumRetries="1", retryDelay="2 minutes"),
            default={"pipelineLogUri": "s3://logs-bucket/dp/"},
            start="2024-03-03T00:00:00",
        )
    )
    proc, storage = process_for()
    proc.start()
    wait_until(lambda: len(harness.attempts(pid, "@A_2024-03-03T00:00:00")) == 1, what="the first attempt")
    wait_until(
        lambda: harness.attempts(pid, "@A_2024-03-03T00:00:00")[0].status is Status.FAILED, what="it to fail"
    )
    harness.clock.advance(120)  # retryDelay
    wait_until(lambda: harness.statuses(pid).get("@A_2024-03-03T00:00:00") == "FAILED", what="A FAILED")
    attempts = harness.attempts(pid, "@A_2024-03-03T00:00:00")
    assert [a.status for a in attempts] == [Status.FAILED, Status.FAILED]
    assert attempts[1].error_id == "NonZeroExit" and "status 3" in attempts[1].error_message
    assert attempts[1].log_location == (
        f"s3://logs-bucket/dp/{pid}/A/@A_2024-03-03T00:00:00/@A_2024-03-03T00:00:00_Attempt=2/attempt.log"
    )
    assert "trying" in storage.read_bytes(attempts[1].log_location).decode()
    assert (harness.home / "s3" / "logs-bucket" / "dp" / pid).is_dir()


def test_activities_that_run_on_a_resource_run_in_its_local_pool(harness, process_for):
    box = {"id": "Box", "type": "EmrCluster", "role": "r", "resourceRole": "rr", "terminateAfter": "2 hours"}
    pid = harness.pipeline(
        definition(
            box,
            shell("A", runsOn={"ref": "Box"}),
            shell("B", runsOn={"ref": "Box"}, dependsOn={"ref": "A"}),
            start="2024-03-03T00:00:00",
        )
    )
    proc, _ = process_for()
    proc.start()
    wait_until(all_finished(harness, pid, 3), what="the activities and their resource to finish")
    (a,) = harness.attempts(pid, "@A_2024-03-03T00:00:00")
    assert "/Box_2024-03-03T00:00:00/" in a.runner_id  # a runner of the resource's pool
    (box_attempt,) = harness.attempts(pid, "@Box_2024-03-03T00:00:00")
    assert box_attempt.cancel_reason == "ShutDown"
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("Box_")], what="the pool to stop"
    )


def test_stopping_gives_running_attempts_back_to_be_retried(harness, process_for, tmp_path: Path):
    started = tmp_path / "started"
    pid = harness.pipeline(
        definition(
            shell("A", command=f"touch {started}; sleep 60", maximumRetries="0"), start="2024-03-03T00:00:00"
        )
    )
    proc, _ = process_for(workers=1, grace=0.2)
    proc.start()
    wait_until(started.exists, what="the command to start")
    proc.stop(30)
    inst = harness.instance(pid, "@A_2024-03-03T00:00:00")
    (attempt,) = harness.attempts(pid, inst.id)
    assert attempt.status is Status.CANCELED and attempt.error_message == "the task runner stopped"
    assert inst.status is Status.WAITING_FOR_RUNNER and inst.tries_left == 0  # not counted as a try
