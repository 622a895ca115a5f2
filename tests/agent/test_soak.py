"""The soak (bench/agent_soak.py) in a short form: a writer appends unique lines while the agent
runs as a real process; the log rotates (also while the agent is down), the agent is killed with
SIGKILL and restarted, and the S3 endpoint (moto's server, real boto3) goes away for a while.
Every line written must be in the store exactly once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("moto.server")
SOAK = Path(__file__).resolve().parents[2] / "bench" / "agent_soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("agent_soak", SOAK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_short_soak_every_line_exactly_once(tmp_path: Path):
    soak = load_soak()
    plan = soak.Plan(lines=30_000, rate=6_000, rotate_every=7_000, kills=3, outage=2.0, seed=3)
    report = soak.soak(plan, tmp_path / "soak")
    assert report["missing"] == [] and report["duplicated"] == {}, report
    assert report["shipped"] == 30_000
    assert report["rotations"] >= 3 and report["rotations_while_down"] >= 1, report
    assert report["ok"], report
