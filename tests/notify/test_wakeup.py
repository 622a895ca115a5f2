"""On PostgreSQL a Publish in one process wakes the delivery loop of another at its commit (LISTEN/
NOTIFY), instead of waiting for the loop's poll; nothing is announced before the commit."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from notify_helpers import PG_URL
from test_delivery import _until

from tailrace.clock import SystemClock
from tailrace.notify.delivery import DeliveryWorker
from tailrace.notify.httpsend import DestinationPolicy
from tailrace.notify.signing import Signer
from tailrace.notify.tables import subscriptions
from tailrace.notify.topics import Scope, TopicService
from tailrace.notify.wakeup import Listener, announce
from tailrace.state.engine import create_engine
from tailrace.state.testing import postgres_available, temporary_schema


@pytest.fixture
def pg_url():
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    with temporary_schema(PG_URL) as url:
        yield url


class Receiver:
    """A bare endpoint that records message ids (no certificate to fetch: no API here)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        ids = self.ids

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ids.append(json.loads(body)["MessageId"])
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def test_publish_in_another_process_wakes_the_loop(pg_url, tmp_path):
    # Two engines stand for two processes: the API's (publishes; no loop of its own) and the
    # delivery loop's, which polls only every 10 minutes here: only the NOTIFY can wake it.
    api_engine, loop_engine = create_engine(pg_url), create_engine(pg_url)
    publisher = TopicService(api_engine, SystemClock())
    worker = DeliveryWorker(
        loop_engine, SystemClock(), Signer(tmp_path / "n"), DestinationPolicy(allow_private=lambda: True),
        poll_interval=600.0,
    )  # fmt: skip
    worker.run_once()  # nothing yet; the loop below then only wakes on notifications
    woken: list[int] = []

    def wake() -> None:
        woken.append(1)
        worker.wake()

    listener = Listener(loop_engine, wake).start()
    with Receiver() as sub:
        try:
            assert listener.listening.wait(30)
            scope = Scope(owner="alice")
            arn = publisher.create_topic(scope, "wake")
            sub_arn = publisher.subscribe(scope, arn, "http", sub.url, return_arn=True)
            with api_engine.begin() as conn:
                conn.execute(
                    subscriptions.update().where(subscriptions.c.arn == sub_arn).values(confirmed=True)
                )
            worker.start()
            _until(lambda: len(sub.ids) == 1, timeout=60)  # the confirmation, from the first round
            _until(lambda: all(r["status"] == "delivered" for r in _rows(api_engine)), timeout=60)
            before = len(woken)
            mid = publisher.publish(scope, arn, "wake up")
            _until(lambda: mid in sub.ids, timeout=60)
            assert len(woken) > before  # the listener's NOTIFY did it
        finally:
            worker.stop()
            listener.stop()
            api_engine.dispose()
            loop_engine.dispose()


def _rows(engine):
    from tailrace.notify.tables import deliveries

    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(deliveries)).mappings()]


def test_nothing_is_announced_by_a_rolled_back_transaction(pg_url):
    engine = create_engine(pg_url)
    woken = threading.Event()
    listener = Listener(engine, woken.set).start()
    try:
        assert listener.listening.wait(30)
        with pytest.raises(RuntimeError), engine.begin() as conn:
            announce(conn)
            raise RuntimeError("rolled back")
        assert not woken.wait(2.0)  # PostgreSQL drops a NOTIFY whose transaction rolls back
        with engine.begin() as conn:
            announce(conn)
        assert woken.wait(30)
    finally:
        listener.stop()
        engine.dispose()


def test_sqlite_needs_no_listener(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/x.db")
    listener = Listener(engine, lambda: None).start()
    assert listener._thread is None
    with engine.begin() as conn:
        announce(conn)  # no-op
        conn.execute(sa.text("SELECT 1"))
    listener.stop()
