"""The EventBus contract (tailrace.events.abc), run on every backend: in-process and Redis."""

from __future__ import annotations

import threading

import pytest
from events_helpers import Collector, events, until

from tailrace.events.model import Broadcast, EventError


def test_events_come_back_in_order_and_equal_to_what_was_published(backend):
    bus = backend.bus()
    published = events(40)
    bus.publish_many(published[:10])
    for event_id, event in published[10:]:
        bus.publish(event_id, event)
    assert bus.last_event_id() == 40
    batch = bus.read("", limit=1000)
    assert [(d.event_id, d.event) for d in batch.events] == published
    assert batch.position == batch.events[-1].position and batch.trimmed is False
    collector = Collector()
    sub = bus.subscribe(collector)
    until("40 events", lambda: len(collector.ids) >= 40)
    sub.close()
    assert [(d.event_id, d.event) for d in collector.got] == published


def test_read_resumes_strictly_after_a_position_and_pages(backend):
    bus = backend.bus()
    bus.publish_many(events(25))
    first = bus.read("", limit=10)
    assert [d.event_id for d in first.events] == list(range(1, 11))
    second = bus.read(first.position, limit=10)
    assert [d.event_id for d in second.events] == list(range(11, 21))
    rest = bus.read(second.position, limit=10)
    assert [d.event_id for d in rest.events] == list(range(21, 26))
    end = bus.read(rest.position, limit=10)
    assert end.events == [] and end.position == rest.position
    # A position taken from a delivered event, or built from an event id, resumes after it.
    assert [d.event_id for d in bus.read(first.events[4].position, limit=3).events] == [6, 7, 8]
    assert [d.event_id for d in bus.read(bus.position_of(22)).events] == [23, 24, 25]


def test_a_subscription_resumes_from_a_position_then_follows_new_events(backend):
    bus = backend.bus()
    bus.publish_many(events(10))
    position = bus.read("", limit=6).position
    collector = Collector()
    sub = bus.subscribe(collector, after=position)
    until("the backlog", lambda: collector.ids == [7, 8, 9, 10])
    bus.publish_many(events(5, start=11))
    until("the new events", lambda: len(collector.ids) >= 9)
    sub.close()
    bus.publish_many(events(3, start=16))  # closed: delivers no more
    assert collector.ids == list(range(7, 16))


def test_no_gap_and_no_repeat_across_broken_connections(backend):
    bus = backend.bus(batch=7)
    collector = Collector()
    sub = bus.subscribe(collector)
    killed: list[str] = []
    for chunk in range(10):
        bus.publish_many(events(20, start=chunk * 20 + 1))
        if chunk % 2 == 0:
            until("a subscriber connection", lambda: backend.name == "memory" or _connected(backend, sub))
            killed += backend.break_connection(sub)
    until("200 events", lambda: len(collector.ids) >= 200)
    bus.publish_many(events(1, start=201))
    until("the last event", lambda: len(collector.ids) >= 201)
    sub.close()
    assert collector.ids == list(range(1, 202))
    if backend.name == "redis":
        # Each break killed a connection the subscription had made anew (a new client id each
        # time). Whether the subscriber's loop saw the break or redis-py re-made the connection when
        # the subscriber next used it depends on timing, so `sub.reconnects` is not counted.
        assert len(set(killed)) == len(killed) >= 5


def _connected(backend, sub) -> bool:
    import redis

    client = redis.Redis.from_url(backend.redis_url)
    try:
        return any(c.get("name") == sub.name for c in client.client_list())
    finally:
        client.close()


def test_publishing_again_is_a_no_op_so_two_relays_at_once_publish_each_event_once(backend):
    bus = backend.bus()
    published = events(300)
    other = backend.bus()  # a second publisher on the same bus (another relay process)
    threads = [
        threading.Thread(
            target=lambda b=b: [b.publish_many(published[i : i + 30]) for i in range(0, 300, 30)]
        )
        for b in (bus, other)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bus.publish(150, Broadcast(at=published[0][1].at, text="late copy"))  # below the last: ignored
    assert bus.last_event_id() == 300
    assert [d.event_id for d in bus.read("", limit=1000).events] == list(range(1, 301))
    assert [d.event for d in bus.read("", limit=1000).events] == [e for _, e in published]


def test_trimming_keeps_the_newest_and_reports_the_gap(backend):
    bus = backend.bus(maxlen=50)
    bus.publish_many(events(1000))
    kept = bus.read("", limit=10_000).events
    ids = [d.event_id for d in kept]
    assert ids == list(range(ids[0], 1001))  # the newest, contiguous
    assert 50 <= len(ids) < 1000  # Redis trims about maxlen (whole nodes): at least maxlen stay
    behind = bus.read(bus.position_of(1), limit=5)
    assert behind.trimmed is True and [d.event_id for d in behind.events] == ids[:5]
    current = bus.read(kept[-11].position, limit=100)
    assert current.trimmed is False and [d.event_id for d in current.events] == ids[-10:]
    collector = Collector()
    sub = bus.subscribe(collector, after=bus.position_of(1))  # fell behind: resumes at the oldest kept
    until("the kept events", lambda: len(collector.ids) >= len(ids))
    sub.close()
    assert collector.ids == ids


def test_a_failing_callback_does_not_stop_its_subscription(backend):
    bus = backend.bus()
    seen: list[int] = []

    def flaky(batch):
        seen.extend(d.event_id for d in batch)
        if len(seen) < 5:
            raise RuntimeError("consumer bug")

    sub = bus.subscribe(flaky)
    for event_id, event in events(8):
        bus.publish(event_id, event)
    until("every event", lambda: len(seen) >= 8)
    sub.close()
    assert seen == list(range(1, 9))


def test_bad_positions_are_refused_clearly(backend):
    bus = backend.bus()
    with pytest.raises(EventError, match="not a position"):
        bus.read("yesterday")
    with pytest.raises(EventError, match="not a position"):
        bus.subscribe(Collector(), after="-3")


def test_close_closes_every_subscription(backend):
    bus = backend.bus()
    collector = Collector()
    bus.subscribe(collector)
    bus.publish_many(events(3))
    until("3 events", lambda: len(collector.ids) >= 3)
    bus.close()
    assert collector.ids == [1, 2, 3]
