"""Fixtures of the event tests: every bus backend (in-process always; Redis at TAILRACE_TEST_REDIS_URL,
default 127.0.0.1:6379, each test on its own stream key) and a state store (SQLite always;
PostgreSQL when up)."""

from __future__ import annotations

import os
import uuid

import pytest

from tailrace.clock import SystemClock
from tailrace.events.memory import MemoryEventBus
from tailrace.state import SqlStateStore, create_engine
from tailrace.state.testing import postgres_available, temporary_schema

REDIS_URL = os.environ.get("TAILRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def redis_unavailable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except redis.RedisError as exc:
        return str(exc)


@pytest.fixture(scope="session")
def redis_url() -> str:
    reason = redis_unavailable()
    if reason:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({reason}); scripts/services starts it")
    return REDIS_URL


@pytest.fixture
def stream_key() -> str:
    return f"tailrace:test:{uuid.uuid4().hex}"


@pytest.fixture
def clean_stream(redis_url, stream_key):
    import redis

    yield stream_key
    client = redis.Redis.from_url(redis_url)
    client.delete(stream_key, f"{stream_key}:last")
    client.close()


class Backend:
    """Builds buses of one backend on one stream, and breaks a subscriber's connection."""

    def __init__(self, name: str, redis_url: str | None, stream: str | None) -> None:
        self.name, self.redis_url, self.stream = name, redis_url, stream
        self.built: list = []

    def bus(self, **kw):
        if self.name == "memory":
            bus = MemoryEventBus(**kw)
        else:
            from tailrace.events.redis import RedisEventBus

            bus = RedisEventBus(self.redis_url, stream=self.stream, block_ms=200, **kw)
        self.built.append(bus)
        return bus

    def break_connection(self, sub) -> list[str]:
        """Kill the subscription's server connections (Redis): their client ids; none when the
        backend has no connection."""
        if self.name == "memory":
            return []
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            killed = [str(c["id"]) for c in client.client_list() if c.get("name") == sub.name]
            for ident in killed:
                client.client_kill_filter(_id=ident)
            return killed
        finally:
            client.close()

    def close(self) -> None:
        for bus in self.built:
            bus.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request):
    if request.param == "memory":
        b = Backend("memory", None, None)
    else:
        b = Backend("redis", request.getfixturevalue("redis_url"), request.getfixturevalue("clean_stream"))
    yield b
    b.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
    else:
        reason = postgres_available(PG_URL)
        if reason:
            pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
        with temporary_schema(PG_URL) as url:
            yield url


@pytest.fixture
def store(db_url):
    s = SqlStateStore(create_engine(db_url), clock=SystemClock())
    yield s
    s.close()
    s.engine.dispose()
