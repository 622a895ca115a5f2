"""Cancel, deactivation and shutdown stop running work: a command's process group is killed, a
DuckDB query is interrupted, and the attempt ends with its state recorded and a line in its log.

Real subprocesses and real queries; the tests wait (with generous bounds) for what happened and
assert on states and on processes being gone, never on how long it took.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from service_harness import Harness, definition, shell
from test_processes import Cluster, wait_until

from tailrace.engines.abc import EngineSetup
from tailrace.engines.metastore import SqlMetastore
from tailrace.engines.registry import EngineRegistry
from tailrace.runtime.worker import Worker, WorkerOptions
from tailrace.state import PipelineState, SqlStateStore, Status, create_engine
from tailrace.storage import Storage

ALL = ["wg:*", "@service", "@resources"]
TODAY = "2024-03-03T00:00:00"  # one period due at T0
# One DuckDB query that would run for hours: 10^12 rows counted.
ENDLESS_QUERY = (
    "SELECT count(*) FROM (SELECT a.x, b.y FROM (SELECT explode(sequence(1, 1000000)) AS x) a "
    "CROSS JOIN (SELECT explode(sequence(1, 1000000)) AS y) b) t;"
)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def long_command(marks: Path) -> str:
    # The shell and a child of it, both recorded, so the test can see the whole group go.
    return f"sleep 600 & echo $! > {marks}/child; echo $$ > {marks}/shell; wait"


@pytest.fixture
def h(sqlite_url, clock, tmp_path):
    store = SqlStateStore(create_engine(sqlite_url), clock=clock)
    # A short lease makes the runner report (and hear a cancel) every 0.2 s; the frozen clock
    # never lets it expire.
    harness = Harness(store=store, home=tmp_path / "home", clock=clock, lease=timedelta(seconds=0.6))
    yield harness
    store.close()
    store.engine.dispose()


class Running:
    """A real task runner thread over the harness's service."""

    def __init__(self, h: Harness, tmp_path: Path) -> None:
        metastore = SqlMetastore(h.store.engine)
        self.worker = Worker(
            service=h.service,
            queues=ALL,
            storage=h.storage,
            home=h.home,
            options=WorkerOptions(runner_id="w1", poll_interval=0.05, grace=1.0),
            engines=EngineRegistry(EngineSetup(storage=h.storage, metastore_for=lambda _owner: metastore)),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.worker.doorbell.ring()
        self.thread.join(60)
        assert not self.thread.is_alive()


def _attempt(h: Harness, pid: str):
    with h.store.transaction(readonly=True) as tx:
        running = tx.attempts.page(pid)
    return running[-1] if running else None


def _started(h: Harness, pid: str) -> str:
    wait_until(lambda: _attempt(h, pid) is not None, what="the attempt to start")
    return _attempt(h, pid).instance_id


def _log_mentions(h: Harness, pid: str, text: str) -> bool:
    """Whether a running attempt's local log (the worker writes it under home/work) has text."""
    return any(text in p.read_text(errors="replace") for p in (h.home / "work" / pid).glob("*.log"))


def test_try_cancel_kills_a_running_commands_process_group(h, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pid = h.pipeline(definition(shell("Long", command=long_command(marks), maximumRetries="2"), start=TODAY))
    h.tick()
    runner = Running(h, tmp_path)
    try:
        iid = _started(h, pid)
        wait_until(lambda: (marks / "child").exists() and (marks / "shell").exists(), what="the command")
        child, leader = (int((marks / n).read_text()) for n in ("child", "shell"))
        assert alive(child) and alive(leader)
        h.service.set_status(pid, [iid], "TRY_CANCEL")
        wait_until(lambda: _attempt(h, pid).status is not Status.RUNNING, what="the attempt to end")
        wait_until(lambda: not alive(child) and not alive(leader), what="the process group to go")
    finally:
        runner.close()
    attempt = _attempt(h, pid)
    assert attempt.status is Status.CANCELED
    assert h.instance(pid, iid).status is Status.CANCELED  # not retried, though retries are left
    log = h.storage.read_bytes(attempt.log_location).decode()
    assert "CANCELED the service asked this attempt to stop" in log


def test_try_cancel_interrupts_a_running_duckdb_query(h, tmp_path):
    hive = {
        "id": "Query",
        "type": "HiveActivity",
        "hiveScript": ENDLESS_QUERY,
        "stage": "false",
        "maximumRetries": "1",
    }
    pid = h.pipeline(definition(hive, start=TODAY))
    h.tick()
    runner = Running(h, tmp_path)
    try:
        iid = _started(h, pid)
        # The engine echoes a statement's text just before running it: cancel once it is there.
        wait_until(lambda: _log_mentions(h, pid, "explode(sequence"), what="the query to begin")
        h.service.set_status(pid, [iid], "TRY_CANCEL")
        wait_until(
            lambda: _attempt(h, pid).status is not Status.RUNNING, timeout=120, what="the query to stop"
        )
    finally:
        runner.close()
    attempt = _attempt(h, pid)
    assert attempt.status is Status.CANCELED
    assert h.instance(pid, iid).status is Status.CANCELED
    log = h.storage.read_bytes(attempt.log_location).decode()
    assert "interrupted" in log.lower() and "CANCELED" in log


def test_deactivation_stops_running_work_and_the_pipeline_becomes_inactive(h, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pid = h.pipeline(definition(shell("Long", command=long_command(marks)), start=TODAY, period="1 day"))
    h.tick()
    runner = Running(h, tmp_path)
    try:
        iid = _started(h, pid)
        wait_until(lambda: (marks / "child").exists(), what="the command")
        child = int((marks / "child").read_text())
        h.service.deactivate(pid)
        wait_until(lambda: _attempt(h, pid).status is not Status.RUNNING, what="the attempt to end")
        wait_until(lambda: not alive(child), what="the command to go")
    finally:
        runner.close()
    h.tick()
    with h.store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(pid).state is PipelineState.INACTIVE
    statuses = h.statuses(pid)
    assert statuses[iid] == "CANCELED"
    assert set(statuses.values()) == {"CANCELED"}, statuses
    assert _attempt(h, pid).status is Status.CANCELED


@pytest.mark.parametrize("kind", ["shell", "hive"])
def test_sigterm_on_up_interrupts_running_attempts_gives_them_back_and_exits(tmp_path, kind):
    cluster = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        if kind == "shell":
            work = shell("Long", command=long_command(marks))
        else:
            work = {"id": "Long", "type": "HiveActivity", "hiveScript": ENDLESS_QUERY, "stage": "false"}
        pid = cluster.pipeline([work])
        proc = cluster.start("up", "--no-http", "--grace", "1", "--poll", "0.2", "--workers", "1")
        wait_until(
            lambda: any(a.status is Status.RUNNING for a in cluster.attempts(pid)),
            what="the attempt to start",
        )
        if kind == "shell":
            wait_until(lambda: (marks / "child").exists(), what="the command")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # the grace is 1 s: a generous bound, not a measurement
        assert proc.returncode == 0, cluster.output(proc)
        if kind == "shell":
            assert not alive(int((marks / "child").read_text()))
        (attempt,) = cluster.attempts(pid)
        assert attempt.status is Status.CANCELED
        assert attempt.error_message == "the task runner stopped"
        (inst,) = [i for i in cluster.instances(pid) if i.id == attempt.instance_id]
        assert inst.status is Status.WAITING_FOR_RUNNER  # given back, to run again
        log = Storage(home=cluster.home).read_bytes(attempt.log_location).decode()
        assert "STOPPED the task runner is shutting down" in log
    finally:
        cluster.close()
