"""kill -9 during lifecycle runs, short: the soak driver (bench/lifecycle_soak.py) over 4,000
objects with three kills. After each kill every object is in exactly one place as the store
answers; the next run finishes the work. The 100,000-object soak is the bench script itself
(figures in bench/RESULTS.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "bench" / "lifecycle_soak.py"


def test_killing_lifecycle_runs_loses_and_duplicates_nothing() -> None:
    env = {**os.environ, "PYTHONPATH": str(SOAK.parents[1] / "src")}
    result = subprocess.run(
        [sys.executable, str(SOAK), "--objects", "4000", "--kills", "3", "--seed", "2", "--no-write"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": consistent;") + result.stdout.count("finished before its kill") >= 1
    assert "every object in exactly one place: {'archived': 1000, 'deleted': 1000" in result.stdout
