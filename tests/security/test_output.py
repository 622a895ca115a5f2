"""Whatever a command prints (NUL, invalid UTF-8, one endless line, hundreds of MB) ends its
attempt with the real status on every backend, and its log is stored and read in bounded memory."""

from __future__ import annotations

import threading
import tracemalloc

import pytest
from service_harness import T0, Harness, definition, shell

from tailrace.clock import FrozenClock
from tailrace.runtime.worker import Worker, WorkerOptions
from tailrace.state import SqlStateStore, create_engine


@pytest.fixture
def harness(db_url, tmp_path):
    clock = FrozenClock(T0)
    store = SqlStateStore(create_engine(db_url), clock=clock)
    h = Harness(store=store, home=tmp_path / "home", clock=clock)
    yield h
    store.close()
    store.engine.dispose()


def _run_one(h: Harness, command: str, *, read_log: bool = True) -> tuple[str, object, bytes]:
    pid = h.pipeline(definition(shell("A", command=command, maximumRetries="0"), start="2024-03-03T00:00:00"))
    h.tick()
    worker = Worker(
        service=h.service,
        queues=["wg:*", "wg"],
        storage=h.storage,
        home=h.home,
        options=WorkerOptions(runner_id="r1", poll_interval=0.01),
    )
    assert worker.run_once(threading.Event())
    (iid,) = h.statuses(pid)
    (attempt,) = h.attempts(pid, iid)
    log = h.storage.read_bytes(attempt.log_location) if read_log else b""
    return h.statuses(pid)[iid], attempt, log


def test_nul_and_invalid_utf8_on_stderr_keep_the_real_exit_status(harness):
    status, attempt, log = _run_one(harness, r"printf 'bad\000byte \377\376 here\n' >&2; exit 3")
    assert status == "FAILED"
    assert "status 3" in attempt.error_message
    assert "\x00" not in attempt.error_message
    assert b"bad" in log and b"here" in log


def test_a_huge_output_is_streamed_not_held(harness, db_url, tmp_path, monkeypatch, capsysbinary):
    """100 MB on one line without a newline, then 100,000 short lines: the worker's Python heap
    stays small, the log holds all of it, and `tailrace logs --tail` reads only the end."""
    command = "head -c 100000000 /dev/zero | tr '\\000' 'a'; seq 1 100000; echo done >&2"
    tracemalloc.start()
    try:
        status, attempt, _ = _run_one_streamed(harness, command)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == "FINISHED"
    assert peak < 30 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.0f} MB"
    window, size = harness.storage.read_range(attempt.log_location, 0, 0)
    assert window == b"" and size > 100_000_000
    end, _ = harness.storage.read_range(attempt.log_location, size - 200, 200)
    assert end.endswith(b"status: FINISHED\n") and b"100000\n" in end
    if db_url.startswith("sqlite"):
        monkeypatch.setenv("TAILRACE_HOME", str(harness.home))
        monkeypatch.setenv("TAILRACE_DATABASE_URL", db_url)
        from tailrace.cli.main import run
        from tailrace.services import build_services

        assert run(["logs", attempt.pipeline_id, attempt.id, "--tail", "40"], build_services) == 0
        out = capsysbinary.readouterr().out
        header, _, body = out.partition(b"<==\n")
        assert attempt.id.encode() in header
        assert body.endswith(b"status: FINISHED\n") and len(body) == 40


def _run_one_streamed(h: Harness, command: str):
    status, attempt, _ = _run_one(h, command, read_log=False)
    return status, attempt, None
