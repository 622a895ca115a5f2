"""DescribePipelines on the event loop (api/loopreads.py) on PostgreSQL: the same answers and
owner isolation as through the thread pool, every request still signed, and the thread pool
again when the loop's connection fails or the caller's key is not cached."""

from __future__ import annotations

import os
import threading
import time

import pytest
import sqlalchemy as sa
from api_helpers import client_for
from botocore.exceptions import ClientError

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.loopreads import LoopReads
from tailrace.api.server import ApiServer
from tailrace.clock import SystemClock
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


class Counting(LoopReads):
    """Counts the calls the loop answered itself."""

    answered = 0

    def dispatch(self, operation, caller, params):
        result = super().dispatch(operation, caller, params)
        self.answered += 1
        return result


@pytest.fixture
def pg(tmp_path):
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    with temporary_schema(PG_URL) as url:
        store = open_store(url)
        service = PipelineService(store=store, home=tmp_path / "home", clock=SystemClock())
        keys = KeyStore(store, SystemClock(), cache_seconds=60)
        app = create_app(service=service, store=store, keys=keys, clock=SystemClock(), poll_wait=0.5)
        endpoint = app.state.json_endpoint
        assert endpoint.loop_reads is not None  # PostgreSQL: on by default
        counting = Counting(endpoint.loop_reads.operations, endpoint.loop_reads.store)
        endpoint.loop_reads = counting
        with ApiServer(app) as server:
            yield server, keys, counting
        counting.close()
        store.close()
        store.engine.dispose()


def test_describe_on_the_loop_answers_as_the_pool_does_and_keeps_owners_apart(pg):
    server, keys, loop = pg
    alice, bob = keys.create("alice"), keys.create("bob")
    dp, other = client_for(server.url, alice), client_for(server.url, bob)
    pid = dp.create_pipeline(name="p", uniqueId="p", description="d", tags=[{"key": "k", "value": "v"}])[
        "pipelineId"
    ]
    [desc] = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    assert loop.answered == 1
    assert desc["pipelineId"] == pid and desc["name"] == "p" and desc["tags"] == [{"key": "k", "value": "v"}]
    fields = {f["key"]: f.get("stringValue") for f in desc["fields"]}
    assert fields["pipelineCreator"] == "alice" and fields["@pipelineState"] == "PENDING"

    with pytest.raises(ClientError) as err:
        other.describe_pipelines(pipelineIds=[pid])  # bob sees alice's pipeline as missing
    assert err.value.response["Error"]["Code"] == "PipelineNotFoundException"
    assert loop.answered == 1  # the refusal is an error, not an answer

    loop.takes = lambda operation: False  # the same call through the thread pool
    assert dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"] == [desc]


def test_a_bad_signature_is_refused_before_the_loop_reads(pg):
    server, keys, loop = pg
    alice = keys.create("alice")
    pid = client_for(server.url, alice).create_pipeline(name="p", uniqueId="p")["pipelineId"]

    class Wrong:
        access_key_id = alice.access_key_id
        secret_access_key = "x" * 40

    with pytest.raises(ClientError) as err:
        client_for(server.url, Wrong).describe_pipelines(pipelineIds=[pid])
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert loop.answered == 0


def test_a_failing_loop_connection_hands_the_calls_to_the_pool(pg):
    server, keys, loop = pg
    alice = keys.create("alice")
    dp = client_for(server.url, alice)
    pid = dp.create_pipeline(name="p", uniqueId="p")["pipelineId"]
    with loop.store.transaction(readonly=True) as tx:  # the loop's own session, killed from outside
        assert tx.conn.exec_driver_sql("SHOW statement_timeout").scalar() == "250ms"
        backend = tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with keys.store.transaction() as tx:
        tx.conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
    [desc] = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    assert desc["pipelineId"] == pid and loop.answered == 0
    assert not loop.takes("DescribePipelines")  # cooling down: the pool serves it meanwhile
    loop._resume_at = 0.0
    assert not loop.takes("DescribePipelines")  # the probe connects in a thread, not the loop
    probe = loop._probe
    if probe is not None:
        probe.join(10)
    assert loop.takes("DescribePipelines")
    dp.describe_pipelines(pipelineIds=[pid])
    assert loop.answered == 1  # a new connection after the cooldown


def test_while_the_database_is_down_the_loop_never_connects(pg, monkeypatch):
    """A probe that fails (here: the loop's database moved to a closed port) keeps the calls in
    the pool for another cooldown; the loop's thread itself never waits on a connect."""
    _, _, loop = pg
    dead = sa.create_engine(loop.store.engine.url.set(port=1), pool_size=1, max_overflow=0)
    connects_on: list[str] = []
    sa.event.listen(dead, "do_connect", lambda *a: connects_on.append(threading.current_thread().name))
    monkeypatch.setattr(loop.store, "engine", dead)
    loop._healthy = False
    loop._resume_at = 0.0
    assert not loop.takes("DescribePipelines")
    for _ in range(1000):  # the probe thread is done once it has cleared itself
        if loop._probe is None:
            break
        time.sleep(0.01)
    assert connects_on == ["loop-reads-probe"]
    assert not loop.takes("DescribePipelines") and loop._probe is None  # cooling down again
    assert loop._resume_at > 0


def test_a_key_not_cached_is_looked_up_in_the_pool(pg):
    server, keys, loop = pg
    alice = keys.create("alice")
    dp = client_for(server.url, alice)
    pid = dp.create_pipeline(name="p", uniqueId="p")["pipelineId"]
    keys.cache_seconds = 0  # every lookup reads the database: never on the loop
    [desc] = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    assert desc["pipelineId"] == pid and loop.answered == 0
