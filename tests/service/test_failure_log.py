"""The service's log of failures (`tailrace up` prints it): one line per failed attempt, with
pipeline, component, period, attempt, what happens next and the log's location."""

from __future__ import annotations

from datetime import timedelta

from service_harness import definition, shell

from tailrace.runtime.servicelog import FailureLog

A1 = "@A_2024-03-03T00:00:00"


def test_one_line_per_failed_attempt_then_no_retries_left(harness):
    lines: list[str] = []
    failures = FailureLog(harness.store, lines.append)
    failures.start_now()
    pid = harness.pipeline(
        definition(shell("A", maximumRetries="1", retryDelay="2 minutes"), start="2024-03-03T00:00:00")
    )
    harness.tick()
    assert failures.check() == 0  # created and scheduled: nothing failed
    for n in (1, 2):
        task = harness.claim()
        harness.service.set_task_status(task.task_id, "FAILED", error_id="E", error_message=f"boom {n}\nmore")
        harness.advance(timedelta(minutes=2))
    assert failures.check() == 2
    log_of = {a.number: a.log_location for a in harness.attempts(pid, A1)}
    assert log_of[1] and log_of[2]
    # The first line is written after both failed: it says the attempt was retried.
    assert lines[0].startswith(f"attempt failed: {pid} A 2024-03-03T00:00:00 attempt 1, retried: boom 1")
    assert "boom 1 (log: " in lines[0] and "more" not in lines[0]
    assert lines[0].endswith(f"(log: {log_of[1]})")
    assert lines[1] == (
        f"attempt failed: {pid} A 2024-03-03T00:00:00 attempt 2, no retries left: boom 2 (log: {log_of[2]})"
    )
    assert failures.check() == 0  # each failure once


def test_a_retry_is_announced_as_such(harness):
    lines: list[str] = []
    failures = FailureLog(harness.store, lines.append)
    failures.start_now()
    harness.pipeline(definition(shell("A", maximumRetries="2"), start="2024-03-03T00:00:00"))
    harness.tick()
    task = harness.claim()
    harness.service.set_task_status(task.task_id, "FAILED", error_id="E", error_message="flaky")
    assert failures.check() == 1
    assert "attempt 1, will retry: flaky" in lines[0]


def test_history_before_start_is_not_repeated(harness):
    harness.pipeline(definition(shell("A", maximumRetries="0"), start="2024-03-03T00:00:00"))
    harness.tick()
    task = harness.claim()
    harness.service.set_task_status(task.task_id, "FAILED", error_id="E", error_message="old")
    lines: list[str] = []
    failures = FailureLog(harness.store, lines.append)
    failures.start_now()
    assert failures.check() == 0 and lines == []


def test_tailrace_up_prints_the_failure_line(tmp_path):
    """The wiring: a real `tailrace up` process says so when an attempt fails."""
    import socket

    from test_processes import Cluster, wait_until

    cluster = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        up = cluster.start("up", "--port", str(port), "--poll", "0.1")
        pid = cluster.pipeline([shell("A", command="echo nope >&2; exit 3", maximumRetries="0")])
        wait_until(lambda: "attempt failed: " in cluster.output(up), timeout=90, what="the failure line")
        line = next(x for x in cluster.output(up).splitlines() if "attempt failed: " in x)
        assert f"attempt failed: {pid} A " in line and "attempt 1, no retries left" in line
        assert "(log: " in line and "attempt.log)" in line
        assert "Traceback" not in cluster.output(up)
    finally:
        cluster.close()
