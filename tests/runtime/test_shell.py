"""A command started for an attempt does not outlive its worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_command_dies_when_its_worker_is_killed(tmp_path: Path):
    marker = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import os, threading
        from pathlib import Path
        from tailrace.runtime.shell import run_command

        class Log:
            def write(self, text): pass

        run_command(["/bin/bash", "-c", "echo $$ > {marker}; exec sleep 600"], cwd=Path("{tmp_path}"),
                    env=os.environ, log=Log(), cancelled=threading.Event(), heartbeat=lambda: None)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(marker.read_text())
    os.kill(child, 0)  # the command is running
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
