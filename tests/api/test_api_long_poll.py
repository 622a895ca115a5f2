"""PollForTask long-polls as AWS's Task Runner expects: a runner's call waits (up to about 90 s)
and is answered as soon as a task of its worker group is ready; the runner then reports progress
and status over the same protocol."""

from __future__ import annotations

import threading

import botocore.config
import pytest
from api_helpers import DEFINITION, T0, client_for

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import FrozenClock, SystemClock
from tailrace.definition import from_file_dict, to_wire
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store


@pytest.fixture
def long_world(tmp_path):
    clock = FrozenClock(T0)
    st = open_store(f"sqlite:///{tmp_path}/lp.db", clock=clock)
    svc = PipelineService(store=st, home=tmp_path / "home", clock=clock)
    scheduler = Scheduler(store=st, transitions=svc.transitions, clock=clock)
    keys = KeyStore(st, SystemClock(), cache_seconds=0)
    app = create_app(service=svc, store=st, keys=keys, clock=SystemClock())  # the default wait
    with ApiServer(app) as srv:
        yield srv, app, keys, scheduler
    st.close()


def _with(url, key, cfg):
    import boto3

    return boto3.client(
        "datapipeline",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=cfg,
    )


def test_a_waiting_poll_is_answered_when_a_task_becomes_ready(long_world):
    srv, app, keys, scheduler = long_world
    key = keys.create("ops")
    dp = client_for(srv.url, key)
    runner = _with(srv.url, key, botocore.config.Config(read_timeout=120, retries={"max_attempts": 1}))
    pid = dp.create_pipeline(name="lp", uniqueId="lp-1")["pipelineId"]
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))

    got: dict = {}

    def poll() -> None:
        got.update(runner.poll_for_task(workerGroup="wg-1", hostname="runner-host"))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    long_poll = app.state.json_endpoint.dispatch.long_poll
    waited = threading.Event()
    for _ in range(400):  # until the runner's call is waiting in the service (no task exists yet)
        if long_poll.waiting == 1:
            waited.set()
            break
        waited.wait(0.05)
    assert waited.is_set() and not got, "the poll should be waiting, not answered empty"

    dp.activate_pipeline(pipelineId=pid, startTimestamp=T0)
    scheduler.tick()  # makes the first period's instance WAITING_FOR_RUNNER: the doorbell rings
    thread.join(60)  # far below the 90 s wait: only an answer on the ring ends it in time
    assert not thread.is_alive()
    task = got["taskObject"]
    assert task["pipelineId"] == pid
    fields = task["objects"][task["attemptId"]]["fields"]
    assert {"key": "hostname", "stringValue": "runner-host"} in fields

    assert (
        runner.report_task_progress(
            taskId=task["taskId"], fields=[{"key": "percentComplete", "stringValue": "50"}]
        )["canceled"]
        is False
    )
    runner.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
    status = dp.describe_objects(pipelineId=pid, objectIds=[task["attemptId"]])["pipelineObjects"][0]
    assert {"key": "@status", "stringValue": "FINISHED"} in status["fields"]


def test_a_poll_with_nothing_to_do_answers_empty_when_its_wait_ends(server, alice):
    # The fixture's server waits POLL_WAIT seconds; another owner's tasks never wake it.
    assert "taskObject" not in client_for(server.url, alice).poll_for_task(workerGroup="nobody")


def test_one_owner_cannot_hold_every_poll_thread(long_world):
    srv, app, keys, scheduler = long_world
    mallory, alice = keys.create("mallory"), keys.create("alice")
    long_poll = app.state.json_endpoint.dispatch.long_poll
    cfg = botocore.config.Config(read_timeout=120, retries={"max_attempts": 1})
    mallory_polls = [
        threading.Thread(
            target=lambda: _with(srv.url, mallory, cfg).poll_for_task(workerGroup="m"), daemon=True
        )
        for _ in range(long_poll.per_owner)
    ]
    for t in mallory_polls:
        t.start()
    ready = threading.Event()
    for _ in range(400):
        if long_poll.waiting == long_poll.per_owner:
            ready.set()
            break
        ready.wait(0.05)
    assert ready.is_set()
    # One more from mallory is answered at once (empty), not parked on a shared thread.
    extra: dict = {}
    t = threading.Thread(
        target=lambda: extra.update(_with(srv.url, mallory, cfg).poll_for_task(workerGroup="m")), daemon=True
    )
    t.start()
    t.join(30)
    assert not t.is_alive() and "taskObject" not in extra
    # Alice still gets a waiting poll, answered by her task.
    dp = client_for(srv.url, alice)
    pid = dp.create_pipeline(name="a", uniqueId="a")["pipelineId"]
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))
    got: dict = {}
    t = threading.Thread(
        target=lambda: got.update(_with(srv.url, alice, cfg).poll_for_task(workerGroup="wg-1")), daemon=True
    )
    t.start()
    pause = threading.Event()  # never set: a bounded wait between checks
    for _ in range(400):
        if long_poll.waiting == long_poll.per_owner + 1:
            break
        pause.wait(0.05)
    assert long_poll.waiting == long_poll.per_owner + 1, (t.is_alive(), got)
    dp.activate_pipeline(pipelineId=pid, startTimestamp=T0)
    scheduler.tick()
    t.join(60)
    assert got["taskObject"]["pipelineId"] == pid
    app.state.close_polls()  # mallory's parked polls end now
    for m in mallory_polls:
        m.join(30)
        assert not m.is_alive()
