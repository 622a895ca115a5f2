"""`tailrace logs --follow`: a running attempt's log as it grows, until the attempt ends (a real
`tailrace worker` process and the CLI in another, on one SQLite file)."""

from __future__ import annotations

import subprocess
import sys

from service_harness import shell
from test_processes import Cluster, wait_until

from tailrace.state import Status


def test_follow_prints_the_log_while_it_runs_and_stops_when_it_ends(tmp_path):
    cluster = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
    gate = tmp_path / "gate"
    try:
        command = f"echo first; while [ ! -f {gate} ]; do sleep 0.1; done; echo second"
        pid = cluster.pipeline([shell("A", command=command, maximumRetries="0")])
        cluster.tick()
        (inst,) = cluster.instances(pid)
        # Started before any attempt exists: it waits for the first one.
        follow = subprocess.Popen(
            [sys.executable, "-m", "tailrace", "logs", pid, inst.id, "--follow"],
            env=cluster.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        cluster.start("worker", "--worker-group", "wg", "--poll", "0.1")
        lines = []
        while "first" not in lines:
            line = follow.stdout.readline()
            assert line, f"--follow ended early: {follow.stderr.read()}"
            lines.append(line.strip())
        assert lines[0].startswith(f"==> {inst.id}_Attempt=1")
        # The gate is closed, so the attempt is still running: this is the live log.
        (attempt,) = cluster.attempts(pid)
        assert attempt.status is Status.RUNNING
        gate.touch()
        rest, err = follow.communicate(timeout=60)
        assert follow.returncode == 0, err
        assert rest.splitlines()[-2:] == ["second", "status: FINISHED"]
        assert rest.count("first") == 0  # nothing printed twice
        wait_until(lambda: cluster.instances(pid)[0].status is Status.FINISHED, what="the instance")
    finally:
        cluster.close()


def test_follow_of_a_failed_attempt_exits_1(tmp_path):
    cluster = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
    try:
        pid = cluster.pipeline([shell("A", command="echo oops >&2; exit 4", maximumRetries="0")])
        cluster.tick()
        (inst,) = cluster.instances(pid)
        cluster.start("worker", "--worker-group", "wg", "--poll", "0.1")
        wait_until(lambda: cluster.instances(pid)[0].status is Status.FAILED, what="the failure")
        done = subprocess.run(
            [sys.executable, "-m", "tailrace", "logs", pid, inst.id, "--follow"],
            env=cluster.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "oops" in done.stdout and "status: FAILED" in done.stdout
        assert "Traceback" not in done.stdout + done.stderr
    finally:
        cluster.close()
