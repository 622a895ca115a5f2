"""Whatever a command prints (NUL, invalid UTF-8, one endless line, hundreds of MB) ends its
attempt with the real status on every backend, and its log is stored and read in bounded memory."""

from __future__ import annotations

import threading

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


def _run_one(h: Harness, command: str) -> tuple[str, object, bytes]:
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
    return h.statuses(pid)[iid], attempt, h.storage.read_bytes(attempt.log_location)


def test_nul_and_invalid_utf8_on_stderr_keep_the_real_exit_status(harness):
    status, attempt, log = _run_one(harness, r"printf 'bad\000byte \377\376 here\n' >&2; exit 3")
    assert status == "FAILED"
    assert "status 3" in attempt.error_message
    assert "\x00" not in attempt.error_message
    assert b"bad" in log and b"here" in log
