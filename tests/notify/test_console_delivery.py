"""The `console` subscription protocol: a topic's messages go to the console's live feed, as
ConsoleNotification events in the outbox, owner by owner, durably (a pending delivery is sent by
the next worker that runs), and the live hub turns them into alarm banners."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tailrace.clock import FrozenClock
from tailrace.console.live.hub import LiveHub
from tailrace.events.model import ConsoleNotification, MessagePublished
from tailrace.notify.delivery import DeliveryWorker
from tailrace.notify.errors import InvalidParameter
from tailrace.notify.events import store_sink
from tailrace.notify.httpsend import DestinationPolicy
from tailrace.notify.signing import Signer
from tailrace.notify.tables import deliveries
from tailrace.notify.topics import Scope, TopicService
from tailrace.state import open_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    clock = FrozenClock(T0)
    topics = TopicService(store.engine, clock, protocols=("http", "https", "console"))

    def worker(console=True):
        return DeliveryWorker(
            store.engine,
            clock,
            Signer(tmp_path / "notify"),
            DestinationPolicy(allow_private=lambda: True),
            console=store_sink(store) if console else None,
        )

    yield store, topics, worker
    store.close()


def notifications(store) -> list[ConsoleNotification]:
    return [r.event for r in store.events_after(0) if isinstance(r.event, ConsoleNotification)]


def test_console_subscription_delivers_to_the_live_feed_of_the_topic_owner(world):
    store, topics, worker = world
    alice, bob = Scope(owner="alice"), Scope(owner="bob")
    arn = topics.create_topic(alice, "ops")
    sub = topics.subscribe(alice, arn, "console", "console", return_arn=True)
    topics.create_topic(bob, "ops")  # same name, another owner: nothing of it reaches alice
    message_id = topics.publish(
        alice, arn, '{"AlarmName": "5xx", "NewStateValue": "ALARM"}', subject="5xx up"
    )
    assert worker().run_once() == 1
    (sent,) = notifications(store)
    assert (sent.owner, sent.topic_arn, sent.subscription_arn) == ("alice", arn, sub)
    assert (sent.message_id, sent.subject) == (message_id, "5xx up")
    assert sent.message == '{"AlarmName": "5xx", "NewStateValue": "ALARM"}'
    with store.engine.connect() as conn:
        assert [r.status for r in conn.execute(sa.select(deliveries))] == ["delivered"]

    async def shown() -> None:
        hub = LiveHub(store=store, bus=None)
        _, replay = await hub.attach("alice", None)  # a new page of alice: the banner's history
        assert [f.data["type"] for f in replay.frames] == ["notify.console"]
        assert replay.frames[0].data["alarm"] is True and replay.frames[0].data["subject"] == "5xx up"
        _, other = await hub.attach("bob", None)
        assert other.frames == []
        hub.close()

    # In a thread of its own: a browser test earlier in the session may leave Playwright's
    # event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, shown()).result()


def test_console_deliveries_wait_for_a_worker_that_delivers_them(world):
    store, topics, worker = world
    scope = Scope(owner="alice")
    arn = topics.create_topic(scope, "ops")
    topics.subscribe(scope, arn, "console", "console")
    topics.publish(scope, arn, "hello")
    assert worker(console=False).run_once() == 0  # a worker without the live feed leaves it pending
    assert notifications(store) == []
    assert worker().run_once() == 1
    assert [n.message for n in notifications(store)] == ["hello"]
    assert worker().run_once() == 0  # delivered once


def test_console_protocol_is_refused_where_it_is_not_enabled_and_needs_an_endpoint(tmp_path, world):
    store, topics, _ = world
    plain = TopicService(store.engine, FrozenClock(T0))
    arn = plain.create_topic(Scope(owner="alice"), "t")
    with pytest.raises(InvalidParameter, match="does not support this protocol string: 'console'"):
        plain.subscribe(Scope(owner="alice"), arn, "console", "console")
    with pytest.raises(InvalidParameter, match="Endpoint is required for protocol console"):
        topics.subscribe(Scope(owner="alice"), arn, "console", "")


def test_published_messages_without_console_subscriptions_make_no_banner(world):
    store, topics, worker = world
    scope = Scope(owner="alice")
    topics.emit = store_sink(store)
    arn = topics.create_topic(scope, "quiet")
    topics.publish(scope, arn, "just a message")
    worker().run_once()
    assert notifications(store) == []
    assert [type(r.event) for r in store.events_after(0)] == [MessagePublished]
