"""Attack-style tests: the API tests' helpers (imported by module name) and the attack suite's
server fixture (security_helpers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tailrace.state.testing import postgres_available, temporary_schema

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from security_helpers import server

__all__ = ["server"]

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """Every attack runs on SQLite and on PostgreSQL (which refuses NUL in text)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    with temporary_schema(PG_URL) as url:
        yield url
