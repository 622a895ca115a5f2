"""The state store contract suite runs on every backend: SQLite always, PostgreSQL when up."""

from __future__ import annotations

import os

import pytest
from state_records import T0

from tailrace.clock import FrozenClock
from tailrace.state import SqlStateStore, create_engine
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_url() -> str:
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason}); scripts/services starts it")
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
    else:
        with temporary_schema(request.getfixturevalue("pg_url")) as url:
            yield url


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def store(db_url, clock):
    s = SqlStateStore(create_engine(db_url), clock=clock)
    yield s
    s.close()
    s.engine.dispose()
