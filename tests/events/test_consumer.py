"""The durable consumer: a named cursor in the state store, resumed after a restart, events
de-duplicated by id, store effects of its handler exactly once; on every bus backend."""

from __future__ import annotations

from datetime import UTC, datetime

from events_helpers import until

from tailrace.events.consumer import DurableConsumer
from tailrace.events.model import Broadcast, Delivered
from tailrace.events.relay import OutboxRelay


def _commit(store, n, *, start=0):
    for i in range(start, start + n):
        with store.transaction() as tx:
            tx.events.append(Broadcast(at=datetime.now(UTC), text=f"e{i}"))


class Recorder:
    """A handler that remembers what it handled and leaves a mark in the store for each event."""

    def __init__(self, fail_on=None, times=0):
        self.handled: list[int] = []
        self.fail_on, self.times = fail_on, times

    def __call__(self, delivered: Delivered, tx) -> None:
        if delivered.event.text == self.fail_on and self.times:
            self.times -= 1
            raise RuntimeError(f"cannot handle {self.fail_on} yet")
        tx.cursors.save(f"mark:{delivered.event_id}", event_id=1, position="", at=datetime.now(UTC))
        self.handled.append(delivered.event_id)


def _marks(store, ids):
    with store.transaction(readonly=True) as tx:
        return [i for i in ids if tx.cursors.find(f"mark:{i}") is not None]


def test_a_consumer_resumes_from_its_saved_cursor_after_a_restart(store, backend):
    bus = backend.bus()
    relay = OutboxRelay(store, bus, use_lease=False)
    _commit(store, 10)
    relay.run_once()
    first = Recorder()
    consumer = DurableConsumer("console", store=store, bus=bus, handler=first)
    consumer.start()
    until("10 events", lambda: len(first.handled) >= 10)
    consumer.close()
    _commit(store, 5, start=10)  # committed while the consumer is down
    relay.run_once()
    second = Recorder()
    # On Redis, a new connection as a new process would open; the in-process bus lives on.
    again = bus if backend.name == "memory" else backend.bus()
    restarted = DurableConsumer("console", store=store, bus=again, handler=second)
    restarted.start()
    until("the 5 new events", lambda: len(second.handled) >= 5)
    restarted.close()
    ids = [r.id for r in store.events_after(0)]
    assert first.handled + second.handled == ids  # each once, in order
    assert _marks(store, ids) == ids
    with store.transaction(readonly=True) as tx:
        assert tx.cursors.find("console").event_id == ids[-1]


def test_redelivered_events_are_dropped_by_id(store, backend):
    bus = backend.bus()
    relay = OutboxRelay(store, bus, use_lease=False)
    _commit(store, 4)
    relay.run_once()
    recorder = Recorder()
    consumer = DurableConsumer("notifier", store=store, bus=bus, handler=recorder)
    batch = bus.read("").events
    consumer.deliver(batch[:3])
    consumer.deliver(batch)  # at-least-once: the first three again, then the fourth
    consumer.deliver(batch[1:2])
    assert recorder.handled == [d.event_id for d in batch]
    assert consumer.duplicates == 4


def test_a_failing_handler_is_retried_and_a_poison_event_is_skipped(store, backend):
    bus = backend.bus()
    relay = OutboxRelay(store, bus, use_lease=False)
    _commit(store, 6)
    relay.run_once()
    flaky = Recorder(fail_on="e2", times=2)  # fails twice, then works
    consumer = DurableConsumer("flaky", store=store, bus=bus, handler=flaky, retry_pause=0.01)
    consumer.start()
    until("6 events", lambda: len(flaky.handled) >= 6)
    consumer.close()
    ids = [r.id for r in store.events_after(0)]
    assert flaky.handled == ids and consumer.skipped == 0
    poison = Recorder(fail_on="e3", times=10**6)
    stuck = DurableConsumer("poison", store=store, bus=bus, handler=poison, retry_pause=0.01, max_attempts=3)
    stuck.start()
    until("the events after the poison one", lambda: len(poison.handled) >= 5)
    stuck.close()
    assert poison.handled == ids[:3] + ids[4:] and stuck.skipped == 1
    with store.transaction(readonly=True) as tx:
        assert tx.cursors.find("poison").event_id == ids[-1]
