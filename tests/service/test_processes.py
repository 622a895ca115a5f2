"""Real processes sharing one database: `tailrace worker` / `scheduler` / `up` subprocesses on a
SQLite file and on PostgreSQL; kill -9, SIGSTOP, many claimers, a clean Ctrl-C.

The service runs on the system clock here (other processes cannot share a frozen one); the
tests wait for what the processes do, never for a schedule.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_harness import shell

from tailrace.clock import SystemClock
from tailrace.definition import from_file_dict
from tailrace.events.model import InstanceStatusChanged
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.state import SqlStateStore, Status, create_engine


def an_hour_ago() -> str:
    """An hour ago: with the default 1-day period one run is due now and the next 23 hours away.

    Computed per pipeline, not at import: a fixed midnight made a second run due when the
    suite crossed midnight (collected on one day, run on the next).
    """
    return (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")


def wait_until(predicate, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    """A database, a data directory, and tailrace processes started against them."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.store = SqlStateStore(create_engine(url), clock=SystemClock())
        self.service = PipelineService(store=self.store, home=home)
        self.procs: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TAILRACE_HOME": str(self.home),
            "TAILRACE_DATABASE_URL": self.url,
            "PYTHONUNBUFFERED": "1",
            # The commands here touch marks in the test's private tmp_path: run them as the test's
            # own user (root in CI, which must then be allowed explicitly).
            "TAILRACE_EXECUTION__RUN_AS": pwd.getpwuid(os.geteuid()).pw_name,
            "TAILRACE_EXECUTION__ALLOW_ROOT": "true",
        }

    def start(self, *args: str) -> subprocess.Popen:
        log = (self.home / f"proc-{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tailrace", *args], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen) -> str:
        return (self.home / f"proc-{self.procs.index(proc)}.log").read_text()

    def pipeline(self, objects, *, default=None, start=None, period="1 day", **schedule) -> str:
        base = {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Every"}, "workerGroup": "wg"}
        base.update(default or {})
        start = start or an_hour_ago()
        sched = {"id": "Every", "type": "Schedule", "period": period, "startDateTime": start, **schedule}
        pid = self.service.create_pipeline("p", f"u-{len(self.procs)}-{time.monotonic_ns()}")
        report = self.service.put_definition(pid, from_file_dict({"objects": [base, sched, *objects]}))
        assert not report.errored, report.to_aws()
        self.service.activate(pid)
        return pid

    def tick(self) -> None:
        Scheduler(store=self.store, transitions=self.service.transitions, clock=SystemClock()).tick()

    def instances(self, pid: str):
        with self.store.transaction(readonly=True) as tx:
            out, after = [], None
            while page := tx.instances.page(pid, after=after, limit=1000):
                out += page
                after = page[-1].id
            return out

    def attempts(self, pid: str):
        with self.store.transaction(readonly=True) as tx:
            out, after = [], None
            while page := tx.attempts.page(pid, after=after, limit=1000):
                out += page
                after = page[-1].id
            return out

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        self.store.close()
        self.store.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(request, tmp_path):
    if request.param == "sqlite":
        c = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
        yield c
        c.close()
    else:
        url = request.getfixturevalue("pg_schema_url")
        c = Cluster(url, tmp_path / "home")
        yield c
        c.close()


def test_a_killed_worker_loses_its_lease_and_the_attempt_runs_again_elsewhere(cluster, tmp_path):
    mark = tmp_path / "first-attempt-started"
    pid = cluster.pipeline(
        [shell("A", command=f"if [ -e {mark} ]; then echo second; else touch {mark}; sleep 120; fi")]
    )
    cluster.tick()
    first = cluster.start("worker", "--worker-group", "wg", "--lease", "1", "--poll", "0.1")
    wait_until(mark.exists, what="the first attempt to start")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    second = cluster.start("worker", "--worker-group", "wg", "--lease", "1", "--poll", "0.1")

    def finished():
        cluster.tick()  # expires the lease once it has run out
        return cluster.instances(pid)[0].status is Status.FINISHED

    wait_until(finished, what="the retried attempt to finish")
    one, two = cluster.attempts(pid)
    assert (one.status, one.error_id) == (Status.FAILED, "LeaseExpired")
    assert two.status is Status.FINISHED and two.runner_id != one.runner_id
    assert (
        "second"
        in (cluster.home / "logs").joinpath(*two.log_location.split("/logs/")[1].split("/")).read_text()
    )
    second.send_signal(signal.SIGINT)
    assert second.wait(30) == 0


def test_a_worker_that_stalls_past_its_lease_is_refused_when_it_wakes(cluster, tmp_path):
    mark = tmp_path / "started"
    pid = cluster.pipeline([shell("A", command=f"touch {mark}; sleep 3; echo done")])
    cluster.tick()
    stalled = cluster.start("worker", "--worker-group", "wg", "--lease", "1", "--poll", "0.1")
    wait_until(mark.exists, what="the attempt to start")
    stalled.send_signal(signal.SIGSTOP)
    time.sleep(1.5)  # let the stopped worker's lease run out (it cannot heartbeat)
    cluster.tick()
    (lost,) = cluster.attempts(pid)
    assert lost.status is Status.FAILED and lost.error_id == "LeaseExpired"
    stalled.send_signal(signal.SIGCONT)
    wait_until(lambda: "was taken away" in cluster.output(stalled), what="the late heartbeat to be refused")
    wait_until(lambda: cluster.instances(pid)[0].status is Status.FINISHED, what="the second attempt")
    one, two = cluster.attempts(pid)
    assert one.status is Status.FAILED and two.status is Status.FINISHED  # the stalled one never reported
    stalled.send_signal(signal.SIGINT)
    assert stalled.wait(30) == 0


def test_several_worker_processes_share_the_work_and_run_each_task_once(cluster):
    components = [shell(f"T{i}", command="true", maxActiveInstances="5") for i in range(8)]
    pid = cluster.pipeline(components, start="2024-01-01T00:00:00", occurrences="15")
    cluster.tick()
    workers = [
        cluster.start("worker", "--worker-group", "wg", "--threads", "2", "--poll", "0.1", "--name", f"w{n}")
        for n in range(3)
    ]
    # maxActiveInstances=5: the next instances are made as earlier ones finish, so "all finished"
    # alone can hold for a moment between two batches.
    wait_until(
        lambda: [i.status for i in cluster.instances(pid)] == [Status.FINISHED] * 120,
        timeout=120,
        what="120 tasks",
    )
    attempts = cluster.attempts(pid)
    assert len(attempts) == 120 and {a.status for a in attempts} == {Status.FINISHED}
    assert len({a.instance_id for a in attempts}) == 120
    assert len({a.runner_id.split("/")[0] for a in attempts}) > 1  # the work was shared
    running = [
        r
        for r in cluster.store.events_after(0, pipeline_id=pid, limit=100_000)
        if isinstance(r.event, InstanceStatusChanged) and r.event.new == "RUNNING"
    ]
    assert len(running) == 120
    for w in workers:
        w.send_signal(signal.SIGINT)
    assert [w.wait(30) for w in workers] == [0, 0, 0], [cluster.output(w)[-3000:] for w in workers]


def test_tailrace_up_serves_runs_and_stops_cleanly_on_ctrl_c(tmp_path):
    cluster = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
    try:
        mark = tmp_path / "long-started"
        pid = cluster.pipeline(
            [
                shell("A", command="echo quick"),
                shell("L", command=f"touch {mark}; sleep 120", maximumRetries="0"),
            ]
        )
        up = cluster.start("up", "--port", "0", "--poll", "0.1", "--grace", "0.5")
        wait_until(lambda: "listening on http://" in cluster.output(up), what="up to listen")
        url = cluster.output(up).split("listening on ")[1].split()[0]
        import urllib.error
        import urllib.request

        try:
            status = urllib.request.urlopen(url + "/", timeout=10).status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status < 500
        wait_until(mark.exists, what="the long attempt to start")
        wait_until(
            lambda: any(
                i.component_id == "A" and i.status is Status.FINISHED for i in cluster.instances(pid)
            ),
            what="A to finish",
        )
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        assert "tailrace up: stopped" in cluster.output(up)
        (long_attempt,) = [a for a in cluster.attempts(pid) if a.instance_id.startswith("@L_")]
        assert long_attempt.status is Status.CANCELED  # given back, not lost
        (long_instance,) = [i for i in cluster.instances(pid) if i.component_id == "L"]
        assert long_instance.status is Status.WAITING_FOR_RUNNER and long_instance.tries_left == 0
    finally:
        cluster.close()
