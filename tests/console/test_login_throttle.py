"""Sign-in rate limiting: the backoff (on SQLite and PostgreSQL, a frozen clock), and over HTTP
two `tailrace console` processes on one PostgreSQL database refusing with 429 and Retry-After,
the same way for a name that exists and one that does not."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from console_helpers import PASSWORD, start, stop, tailrace

from tailrace.clock import FrozenClock
from tailrace.console.throttle import (
    FREE_PER_CLIENT,
    FREE_PER_NAME,
    MAX_BLOCK,
    WINDOW,
    LoginThrottle,
    block_for,
    subjects,
)
from tailrace.state import SqlStateStore, create_engine, schema
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    with temporary_schema(PG_URL, prefix="tailrace_throttle") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_block_for_doubles_after_the_free_failures_up_to_the_cap() -> None:
    assert [block_for(n, 5).total_seconds() for n in range(1, 10)] == [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert block_for(500, 5) == MAX_BLOCK


def test_backoff_window_and_success(db_url: str) -> None:
    store = SqlStateStore(create_engine(db_url))  # migrated: the table exists
    clock = FrozenClock(T0)
    throttle = LoginThrottle(store.engine, clock)
    alice = subjects("name:alice", "10.0.0.1")
    try:
        for _ in range(FREE_PER_NAME):
            assert throttle.retry_after(alice) == 0
            throttle.failed(alice)
        assert throttle.retry_after(alice) == 0  # the free ones cost nothing
        throttle.failed(alice)
        assert throttle.retry_after(alice) == 1
        assert throttle.retry_after(subjects("name:bob", "10.0.0.2")) == 0  # others are not slowed
        assert throttle.retry_after(subjects("name:bob", "10.0.0.1")) == 0  # the address has 14 left
        clock.advance(1)
        throttle.failed(alice)
        assert throttle.retry_after(alice) == 2
        clock.advance(2)
        throttle.failed(alice)
        assert throttle.retry_after(alice) == 4
        # No secret at rest: the names and addresses tried are stored as digests.
        with store.engine.connect() as conn:
            stored = [r.subject for r in conn.execute(sa.select(schema.console_login_failures))]
        assert len(stored) == 2 and not any("alice" in s or "10.0.0.1" in s for s in stored)
        # A success clears the name, not the address's count.
        clock.advance(4)
        throttle.succeeded(alice[0])
        assert throttle.retry_after(alice) == 0
        throttle.failed(alice)
        assert throttle.retry_after(alice) == 0
        # After a quiet window everything starts over.
        clock.advance(WINDOW + timedelta(seconds=1))
        for _ in range(FREE_PER_NAME):
            throttle.failed(alice)
        assert throttle.retry_after(alice) == 0
    finally:
        store.close()
        store.engine.dispose()


def test_many_names_from_one_address_block_the_address(db_url: str) -> None:
    store = SqlStateStore(create_engine(db_url))
    clock = FrozenClock(T0)
    throttle = LoginThrottle(store.engine, clock)
    try:
        for i in range(FREE_PER_CLIENT + 1):
            throttle.failed(subjects(f"name:guess{i}", "10.0.0.9"))
        assert throttle.retry_after(subjects("name:anyone", "10.0.0.9")) == 1
        assert throttle.retry_after(subjects("name:anyone", "10.0.0.8")) == 0
    finally:
        store.close()
        store.engine.dispose()


def _login(url: str, name: str, password: str) -> requests.Response:
    return requests.post(
        url + "/console/login",
        data={"kind": "user", "name": name, "password": password, "next": "/console"},
        allow_redirects=False,
        timeout=60,
    )


def _until_refused(url: str, name: str) -> tuple[list[int], requests.Response]:
    """Fail to sign in as `name` until a 429 that asks for at least 4 seconds (waiting out the
    shorter ones: each failure after them doubles the wait); the statuses seen and that 429."""
    seen: list[int] = []
    for _ in range(40):
        r = _login(url, name, "wrong password!")
        seen.append(r.status_code)
        if r.status_code == 429:
            wait = int(r.headers["Retry-After"])
            if wait >= 4:
                return seen, r
            time.sleep(wait)
    raise AssertionError(f"no lasting 429 for {name}: {seen}")


def _wait_out(page: str) -> str:
    return re.sub(r"try again in \d+ seconds", "try again in N seconds", page)


def test_two_console_processes_share_the_count_and_never_tell_who_exists(pg_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(TAILRACE_HOME=str(tmp_path / "home"), TAILRACE_DATABASE_URL=pg_url, PYTHONUNBUFFERED="1")
    tailrace(env, "users", "create", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    procs = []
    try:
        urls = []
        for i in range(2):
            proc, url = start(
                ["console", "--port", "0"],
                env,
                tmp_path / f"console{i}.log",
                r"listening on (http://\S+)/console",
            )
            procs.append(proc)
            urls.append(url)
        a, b = urls
        statuses, refused = _until_refused(a, "carol")
        assert statuses[: FREE_PER_NAME + 1] == [401] * (FREE_PER_NAME + 1)
        assert "Too many failed sign-ins" in refused.text
        # The other process refuses too, even the right password, before checking it.
        other = _login(b, "carol", PASSWORD)
        assert other.status_code == 429 and int(other.headers["Retry-After"]) >= 1
        # A name that is no user gets the very same answers.
        ghost_statuses, ghost = _until_refused(b, "nobody-here")
        assert ghost_statuses[: FREE_PER_NAME + 1] == statuses[: FREE_PER_NAME + 1]
        assert _wait_out(ghost.text) == _wait_out(refused.text)
        # Someone else, from the same address, still signs in (the address has failures to spare).
        tailrace(env, "users", "create", "dave", "--password-stdin", stdin=PASSWORD + "\n")
        assert _login(a, "dave", PASSWORD).status_code == 303
    finally:
        for proc in procs:
            stop(proc)
