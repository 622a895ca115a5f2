"""Two agents on the same buffer and position files: the second exits with a clear error and
the first keeps shipping (real processes: fcntl locks are per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .test_cli import write_config

REPO = Path(__file__).resolve().parents[2]


def _agent(cfg: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TAILRACE_HOME": str(home)}
    env.pop("TAILRACE_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tailrace", "agent", "-c", str(cfg)],
        env=env,
        cwd=cfg.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)  # waiting for another process to start, not for a schedule


def test_second_agent_on_the_same_files_exits_with_a_clear_error(tmp_path):
    log, state = tmp_path / "access_log", tmp_path / "state"
    log.write_text("")
    cfg = write_config(
        tmp_path / "agent.toml", log, state, slice_format="%Y%m%d", target=str(tmp_path / "out") + "/"
    )
    first = _agent(cfg, tmp_path / "home")
    try:
        _wait_for(state / "access.pos", first)
        second = _agent(cfg, tmp_path / "home")
        _, err = second.communicate(timeout=60)
        assert second.returncode != 0
        assert f"another agent (pid {first.pid})" in err
        assert "access.pos" in err or "buffer" in err
        assert "Traceback" not in err
        assert first.poll() is None  # the first one is untouched
    finally:
        first.terminate()
        first.communicate(timeout=60)
    # Once the first is gone, its locks are gone with it: a new agent starts.
    third = _agent(cfg, tmp_path / "home")
    try:
        # The lock file stays from the first agent; the new agent writes its own pid into it.
        lock = state / "access.pos.lock"
        deadline = time.monotonic() + 60
        while lock.read_text().strip() != str(third.pid):
            assert third.poll() is None, third.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        third.terminate()
        _, err = third.communicate(timeout=60)
    assert "another agent" not in err
