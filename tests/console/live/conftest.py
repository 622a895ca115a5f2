"""Fixtures of the live-feed tests: a PostgreSQL schema, a Redis stream, console processes (uvicorn,
tests/console/live/liveapp.py) and headless Chromium (the system browser, through Playwright)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import CHROMIUM, CHROMIUM_ARGS, REDIS_URL, LivePage, Server

from tailrace.clock import SystemClock
from tailrace.state import SqlStateStore, create_engine
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    with temporary_schema(PG_URL, prefix="tailrace_live") as url:
        yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStateStore]:
    s = SqlStateStore(create_engine(pg_url), clock=SystemClock())
    yield s
    s.close()
    s.engine.dispose()


@pytest.fixture
def stream() -> Iterator[str]:
    import redis

    key = f"tailrace:test:live:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({exc})")
    yield key
    client.delete(key, f"{key}:last")
    client.close()


@pytest.fixture
def servers(pg_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start console processes: servers() follows the store, servers(KEY) the Redis bus on stream KEY;
    servers(port=P) starts one on a port (a restart of a stopped one)."""
    started: list[Server] = []

    def start(stream: str | None = None, port: int | None = None) -> Server:
        server = Server(pg_url, stream, tmp_path / f"server{len(started)}.log", port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def pages(browser: Any) -> Iterator[Callable[..., LivePage]]:
    opened: list[LivePage] = []

    def open_page(server: Server, user: str | None = "ann.alice.w") -> LivePage:
        page = LivePage(browser, server, user)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        page.close()
