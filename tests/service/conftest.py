"""Service tests: a real store (SQLite file; PostgreSQL where marked), a frozen clock, and the
test acting as the task runner through the service's own API."""

from __future__ import annotations

import os

import pytest
from service_harness import T0, Harness, definition, shell

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


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def pg_schema_url(pg_url):
    with temporary_schema(pg_url) as url:
        yield url


@pytest.fixture
def harness(sqlite_url, clock, tmp_path):
    store = SqlStateStore(create_engine(sqlite_url), clock=clock)
    h = Harness(store=store, home=tmp_path / "home", clock=clock)
    yield h
    store.close()
    store.engine.dispose()


@pytest.fixture
def history(harness):
    """Two components over five 3-hour periods; attempts finish, fail or keep running in turn,
    and start half a second past the second (the fields show whole seconds)."""
    pid = harness.pipeline(
        definition(
            shell("A", maximumRetries="0"),
            shell("B", dependsOn={"ref": "A"}, maximumRetries="0"),
            start="2024-03-02T12:00:00",
            period="3 hours",
        )
    )
    harness.advance(0.5)
    turn = iter(["FINISHED", "FAILED", "FINISHED", "KEEP"] * 20)
    harness.run_until_quiet(lambda task: next(turn))
    statuses = set(harness.statuses(pid).values())
    assert {"FINISHED", "FAILED", "RUNNING", "WAITING_ON_DEPENDENCIES"} <= statuses, statuses
    return harness, pid
