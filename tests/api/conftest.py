"""API fixtures: a state store on SQLite, issued keys, the app served by uvicorn on a free port,
boto3 clients pointed at it, and the tailrace CLI run in-process against it."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from api_helpers import DEFINITION, T0, client_for

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.cli.main import run
from tailrace.clock import FrozenClock, SystemClock
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.services import build_services
from tailrace.state import open_store

POLL_WAIT = 0.5


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
    # PollForTask with nothing to do answers after POLL_WAIT (AWS: about 90 s).
    app = create_app(service=service, store=store, keys=keys, clock=SystemClock(), poll_wait=POLL_WAIT)
    with ApiServer(app) as srv:
        yield srv


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
    app = create_app(service=svc, store=st, keys=ks, clock=SystemClock(), poll_wait=POLL_WAIT)
    with ApiServer(app) as srv:
        yield World(server=srv, keys=ks, scheduler=scheduler, clock=clock, service=svc, store=st)
    st.close()


@pytest.fixture
def cli(world, tmp_path, monkeypatch):
    """Run `tailrace ARGS...` in-process against the world's server; returns (code, stdout, stderr)."""
    key = world.keys.create("carol")
    home = tmp_path / "client-home"
    monkeypatch.setenv("TAILRACE_HOME", str(home))
    monkeypatch.setenv("TAILRACE_ENDPOINT", world.server.url)
    monkeypatch.setenv("TAILRACE_ACCESS_KEY_ID", key.access_key_id)
    monkeypatch.setenv("TAILRACE_SECRET_ACCESS_KEY", key.secret_access_key)
    monkeypatch.chdir(tmp_path)

    def tailrace(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        code = run(list(argv), build_services)
        return code, out.getvalue(), err.getvalue()

    tailrace.key = key
    return tailrace


@pytest.fixture
def definition_file(tmp_path):
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(DEFINITION))
    return path
