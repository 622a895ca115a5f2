"""API fixtures: a state store on SQLite, issued keys, the app served by uvicorn on a free port,
and boto3 clients pointed at it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import FrozenClock, SystemClock
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store

T0 = datetime(2026, 1, 5, tzinfo=UTC)

DEFINITION = {
    "objects": [
        {
            "id": "Default",
            "scheduleType": "cron",
            "schedule": {"ref": "Daily"},
            "failureAndRerunMode": "CASCADE",
        },
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-01-01T00:00:00"},
        {
            "id": "Hello",
            "type": "ShellCommandActivity",
            "command": "echo #{myMsg}",
            "workerGroup": "wg-1",
            "maximumRetries": "0",
        },
    ],
    "parameters": [{"id": "myMsg", "type": "String", "default": "hi"}],
}


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
def service(store, tmp_path):
    return PipelineService(store=store, home=tmp_path / "home", clock=SystemClock())


@pytest.fixture
def server(store, keys, service):
    # SigV4 needs the real time: botocore signs with the wall clock.
    app = create_app(service=service, store=store, keys=keys, clock=SystemClock())
    with ApiServer(app) as srv:
        yield srv


def client_for(url: str, key=None, *, secret: str | None = None):
    return boto3.client(
        "datapipeline",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id if key else "NOKEY",
        aws_secret_access_key=secret or (key.secret_access_key if key else "nosecret"),
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def alice(keys):
    return keys.create("alice")


@pytest.fixture
def bob(keys):
    return keys.create("bob")


@pytest.fixture
def dp(server, alice):
    return client_for(server.url, alice)


@dataclass
class World:
    server: ApiServer
    keys: KeyStore
    scheduler: Scheduler
    clock: FrozenClock
    service: PipelineService
    store: Any


@pytest.fixture
def world(tmp_path):
    """The real service and scheduler on a frozen clock (the test ticks it), served over HTTP."""
    clock = FrozenClock(T0)
    st = open_store(f"sqlite:///{tmp_path}/world.db", clock=clock)
    svc = PipelineService(store=st, home=tmp_path / "home", clock=clock)
    scheduler = Scheduler(store=st, transitions=svc.transitions, clock=clock)
    ks = KeyStore(st, SystemClock(), cache_seconds=0)
    app = create_app(service=svc, store=st, keys=ks, clock=SystemClock())
    with ApiServer(app) as srv:
        yield World(server=srv, keys=ks, scheduler=scheduler, clock=clock, service=svc, store=st)
    st.close()
