"""Shared fixtures: an isolated data directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TAILRACE_HOME (and working directory) for the test."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("TAILRACE_HOME", str(h))
    monkeypatch.delenv("TAILRACE_DATABASE_URL", raising=False)
    monkeypatch.delenv("TAILRACE_S3_ENDPOINT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return h


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TZ", "UTC")
    # `tailrace up` serves S3 on 8041 by default: tests that start it (in parallel) must not all
    # take that port; those that want S3 pass --s3-port with a free port.
    os.environ.setdefault("TAILRACE_S3_PORT", "0")
