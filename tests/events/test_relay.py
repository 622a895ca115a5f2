"""The outbox relay: committed events reach the bus once, in commit order; rolled-back ones never;
a relay killed (SIGKILL, a real process) between commit and publish loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from events_helpers import Collector, until

from tailrace.events.memory import MemoryEventBus
from tailrace.events.model import Broadcast, PipelineStateChanged
from tailrace.events.redis import RedisEventBus
from tailrace.events.relay import LEASE, OutboxRelay

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _commit(store, texts, *, pid=None):
    with store.transaction() as tx:
        for text in texts:
            tx.events.append(Broadcast(at=datetime.now(UTC), pipeline_id=pid, text=text))


def _outbox(store):
    return [(r.id, r.event) for r in store.events_after(0, limit=100_000)]


def test_relay_publishes_committed_events_in_order_and_nothing_rolled_back(store, backend):
    bus = backend.bus()
    relay = OutboxRelay(store, bus, use_lease=False)
    _commit(store, ["a", "b"])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.append(Broadcast(at=datetime.now(UTC), text="rolled back"))
        raise RuntimeError("boom")
    _commit(store, ["c"])
    assert relay.run_once() == 3
    assert relay.run_once() == 0  # nothing new: nothing published again
    published = [(d.event_id, d.event) for d in bus.read("").events]
    assert published == _outbox(store)
    assert [e.text for _, e in published] == ["a", "b", "c"]


def test_a_running_relay_is_woken_by_commits_and_many_writers_keep_commit_order(store, backend):
    bus = backend.bus()
    collector = Collector()
    sub = bus.subscribe(collector)
    relay = OutboxRelay(store, bus, poll_interval=5.0)  # commits wake it well before its poll
    relay.start()

    def writer(w: int) -> None:
        for i in range(15):
            _commit(store, [f"{w}.{i}.x", f"{w}.{i}.y"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    until("120 events on the bus", lambda: len(collector.ids) >= 120)
    relay.stop()
    sub.close()
    assert [(d.event_id, d.event) for d in collector.got] == _outbox(store)
    for w in range(4):  # each writer's events in the order it committed them
        mine = [d.event.text for d in collector.got if d.event.text.startswith(f"{w}.")]
        assert mine == [f"{w}.{i}.{s}" for i in range(15) for s in "xy"]


def test_a_new_bus_gets_the_last_events_of_a_long_history_only(store, backend):
    _commit(store, [str(i) for i in range(30)])
    bus = backend.bus()
    relay = OutboxRelay(store, bus, replay=10, use_lease=False)
    assert relay.run_once() == 10
    _commit(store, ["next"])
    assert relay.run_once() == 1
    assert [d.event.text for d in bus.read("").events] == [str(i) for i in range(20, 30)] + ["next"]


def test_only_the_lease_holder_relays_but_a_second_relay_would_be_harmless(store, backend):
    bus = backend.bus()
    first = OutboxRelay(store, bus, holder="first")
    second = OutboxRelay(store, bus, holder="second")
    _commit(store, ["a", "b", "c"])
    assert first.run_once() == 3
    _commit(store, ["d"])
    assert second.run_once() == 0  # the first holds the lease
    with store.transaction(readonly=True) as tx:
        assert tx.leases.holder(LEASE, now=datetime.now(UTC)) == "first"
    unleashed = OutboxRelay(store, bus, use_lease=False)
    assert unleashed.run_once() == 1
    assert first.run_once() == 0
    assert [d.event_id for d in bus.read("").events] == [r.id for r in store.events_after(0)]


def test_the_in_process_bus_starts_at_the_current_end_without_replaying_history(store):
    _commit(store, ["old"])
    bus = MemoryEventBus()
    relay = OutboxRelay(store, bus, replay=0, poll_interval=0.05)
    relay.start()
    _commit(store, ["new"])
    until("the new event", lambda: bus.last_event_id() > 0)
    relay.stop()
    assert [d.event.text for d in bus.read("").events] == ["new"]
    bus.close()


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "relay_proc.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expect(proc: subprocess.Popen, word: str) -> list[str]:
    for line in proc.stdout:
        if line.startswith(word):
            return line.split()
    raise AssertionError(f"relay process ended before {word}: {proc.stderr.read()}")


@pytest.mark.redis
def test_a_relay_killed_between_commit_and_publish_loses_and_repeats_nothing(
    store, db_url, redis_url, clean_stream
):
    stream = clean_stream
    follower_bus = RedisEventBus(redis_url, stream=stream, block_ms=200)
    collector = Collector()
    sub = follower_bus.subscribe(collector)
    stalled = _spawn("stall", db_url, redis_url, stream, "40")
    try:
        committed = int(_expect(stalled, "COMMITTED")[1])
        half = int(_expect(stalled, "STALLED")[1])
    finally:
        stalled.kill()  # SIGKILL: committed, half published, the rest never
        stalled.wait(30)
    assert stalled.returncode == -9
    assert 0 < follower_bus.last_event_id() < committed and half == 40  # 80 events: half went out
    # While no relay runs: more commits, and one that rolls back.
    _commit(store, ["while down 1", "while down 2"], pid="df-relay0000000000001")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.events.append(Broadcast(at=datetime.now(UTC), text="never"))
        raise RuntimeError("rolled back")
    restarted = _spawn("relay", db_url, redis_url, stream)
    try:
        caught_up = int(_expect(restarted, "CAUGHT_UP")[1])
        outbox = _outbox(store)
        assert caught_up == outbox[-1][0] == committed + 2
        until("every event at the follower", lambda: len(collector.ids) >= len(outbox))
        _commit(store, ["after restart"])  # the restarted relay keeps relaying
        outbox = _outbox(store)
        until("the last event", lambda: collector.ids[-1:] == [outbox[-1][0]])
    finally:
        restarted.terminate()
        assert restarted.wait(30) == 0
    sub.close()
    follower_bus.close()
    assert [(d.event_id, d.event) for d in collector.got] == outbox  # each once, in commit order
    assert sum(isinstance(e, PipelineStateChanged) for _, e in outbox) == 40
    assert all(e.owner == "alice" for _, e in outbox if e.pipeline_id)
    assert not any(getattr(e, "text", "") == "never" for _, e in outbox)
