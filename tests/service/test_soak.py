"""kill -9 during a backfill, short: the soak driver (bench/service_soak.py) with a few periods
and rounds. It checks that every instance is FINISHED with exactly one FINISHED attempt, that no
attempt is left RUNNING, and that the outputs equal a clean `tailrace run`'s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "service_soak.py"


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_killing_the_scheduler_and_workers_loses_and_repeats_nothing(database, request):
    if database == "postgres":
        request.getfixturevalue("pg_url")  # skips when PostgreSQL is not up
    result = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--periods",
            "8",
            "--rounds",
            "3",
            "--database",
            database,
            "--seed",
            "3",
            "--no-write",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every instance FINISHED once; outputs = clean run" in result.stdout
