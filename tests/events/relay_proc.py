"""A relay process for tests/events/test_relay.py (run as a script; the test kills it).

relay_proc.py stall DB_URL REDIS_URL STREAM N   commit N transactions of events, start a relay
                                                 whose first publish stops half-way: prints
                                                 COMMITTED, then STALLED, then hangs
relay_proc.py relay DB_URL REDIS_URL STREAM     relay until caught up (prints CAUGHT_UP), then
                                                 keep relaying until SIGTERM
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime

from tailrace.clock import SystemClock
from tailrace.events.model import Broadcast
from tailrace.events.redis import RedisEventBus
from tailrace.events.relay import OutboxRelay
from tailrace.state import Pipeline, PipelineState, SqlStateStore, create_engine

PID = "df-relay0000000000001"


class StallingBus(RedisEventBus):
    """Publishes the first half of its first batch, then hangs: a relay killed mid-publish."""

    def publish_many(self, items):
        half = max(1, len(items) // 2)
        super().publish_many(items[:half])
        print("STALLED", half, flush=True)
        threading.Event().wait()


def commit(store: SqlStateStore, n: int) -> None:
    now = datetime.now(UTC)
    with store.transaction() as tx:
        if tx.pipelines.find(PID) is None:
            tx.pipelines.add(
                Pipeline(id=PID, name="p", unique_id="u", owner="alice", created_at=now, updated_at=now)
            )
    for i in range(n):
        with store.transaction() as tx:
            state = PipelineState.SCHEDULED if i % 2 == 0 else PipelineState.PENDING
            tx.pipelines.update(PID, state=state, detail={"i": i})
            tx.events.append(Broadcast(at=datetime.now(UTC), pipeline_id=PID, text=f"tx {i}"))


def main(argv: list[str]) -> int:
    mode, db_url, redis_url, stream = argv[:4]
    store = SqlStateStore(create_engine(db_url), clock=SystemClock())
    if mode == "stall":
        commit(store, int(argv[4]))
        print("COMMITTED", store.last_event_id(), flush=True)
        relay = OutboxRelay(store, StallingBus(redis_url, stream=stream), poll_interval=0.1, lease_seconds=2)
        relay.start()
        threading.Event().wait()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bus = RedisEventBus(redis_url, stream=stream)
    relay = OutboxRelay(store, bus, poll_interval=0.1, lease_seconds=2)  # takes over a killed one soon
    relay.start()
    while bus.last_event_id() < store.last_event_id():
        stop.wait(0.05)
    print("CAUGHT_UP", bus.last_event_id(), flush=True)
    stop.wait()
    relay.stop()
    bus.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
