"""On SQLite the writers of one process take turns in arrival order (a thread writing in a loop
cannot starve the others), and listeners run after the turn is handed on."""

from __future__ import annotations

import threading
import time

from state_records import T0, pipeline

from tailrace.clock import FrozenClock
from tailrace.state import SqlStateStore, create_engine
from tailrace.state.sql import _FifoLock


def _queued(lock: _FifoLock, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(lock._queue) < n:
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.001)


def test_waiters_get_the_lock_in_arrival_order_even_if_the_holder_asks_again():
    lock = _FifoLock()
    assert lock.acquire(1)
    order: list[str] = []

    def take(name: str) -> None:
        assert lock.acquire(30)
        order.append(name)
        lock.release()

    threads = []
    for n, name in enumerate(["B", "C"], start=1):
        t = threading.Thread(target=take, args=(name,))
        t.start()
        threads.append(t)
        _queued(lock, n)
    lock.release()
    assert lock.acquire(30)  # the former holder asks again: it queues behind B and C
    order.append("A")
    lock.release()
    for t in threads:
        t.join(30)
    assert order == ["B", "C", "A"]


def test_a_waiter_that_gives_up_leaves_the_queue():
    lock = _FifoLock()
    assert lock.acquire(1)
    assert lock.acquire(0.01) is False
    assert len(lock._queue) == 0
    lock.release()
    assert lock.acquire(1)


def test_a_listener_may_write_after_a_write_transaction(tmp_path):
    store = SqlStateStore(create_engine(f"sqlite:///{tmp_path}/s.db"), clock=FrozenClock(T0))
    wrote = []

    def listener(events):
        if not wrote:
            wrote.append(True)
            with store.transaction() as tx:  # would wait for itself if run inside the turn
                tx.pipelines.add(pipeline("df-2"))

    store.subscribe(listener)
    with store.transaction() as tx:
        tx.pipelines.add(pipeline("df-1"))
        tx.events.append("pipeline.created", pipeline_id="df-1", object_id="df-1")
    with store.transaction(readonly=True) as tx:
        assert tx.pipelines.find("df-2") is not None
    store.close()
    store.engine.dispose()
