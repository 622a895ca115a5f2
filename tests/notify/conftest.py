"""Fixtures for the notify tests: a store on SQLite, keys for two owners, the API over HTTP."""

from __future__ import annotations

import pytest

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import SystemClock
from tailrace.notify.topics import TopicService
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path}/state.db")
    yield s
    s.close()
    s.engine.dispose()


@pytest.fixture
def keys(store):
    return KeyStore(store, SystemClock(), cache_seconds=0)


@pytest.fixture
def topics(store):
    return TopicService(store.engine, SystemClock())


@pytest.fixture
def server(store, keys, topics, tmp_path):
    service = PipelineService(store=store, home=tmp_path / "home", clock=SystemClock())
    app = create_app(service=service, store=store, keys=keys, clock=SystemClock(), topics=topics)
    with ApiServer(app) as srv:
        topics.public_url = srv.url
        yield srv


@pytest.fixture
def alice(keys):
    return keys.create("alice")


@pytest.fixture
def bob(keys):
    return keys.create("bob")
