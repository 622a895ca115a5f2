"""Events: the outbox relay's throughput and the commit-to-subscriber latency, on the in-process
bus and on Redis (127.0.0.1:6379), with the state store on SQLite (and PostgreSQL with --pg).

    .venv/bin/python bench/events_relay.py [--events 20000] [--pg]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from scheduler_common import write_section
from tailrace.events.memory import MemoryEventBus
from tailrace.events.model import InstanceStatusChanged
from tailrace.events.redis import RedisEventBus
from tailrace.events.relay import OutboxRelay
from tailrace.state import SqlStateStore, create_engine
from tailrace.state.testing import temporary_schema

REDIS = "redis://127.0.0.1:6379/0"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _event(i: int) -> InstanceStatusChanged:
    return InstanceStatusChanged(
        at=datetime.now(UTC), pipeline_id="df-bench", object_id=f"@J_{i}", old="RUNNING", new="FINISHED"
    )


def _commit(store: SqlStateStore, n: int, per_tx: int) -> float:
    began = time.perf_counter()
    for start in range(0, n, per_tx):
        with store.transaction() as tx:
            for i in range(start, min(n, start + per_tx)):
                tx.events.append(_event(i))
    return time.perf_counter() - began


def _bus(kind: str):
    if kind == "memory":
        return MemoryEventBus(maxlen=1_000_000)
    return RedisEventBus(REDIS, stream=f"tailrace:bench:{uuid.uuid4().hex}", maxlen=1_000_000, block_ms=200)


def _drop(bus) -> None:
    if isinstance(bus, RedisEventBus):
        bus.client.delete(bus.stream, bus.last_key)
    bus.close()


def measure(url: str, kind: str, n: int) -> dict[str, float]:
    store = SqlStateStore(create_engine(url))
    commit_s = _commit(store, n, 10)
    bus = _bus(kind)
    relay = OutboxRelay(store, bus, use_lease=False, batch=1000)
    began = time.perf_counter()
    relay.run_once()
    relay_s = time.perf_counter() - began
    assert bus.last_event_id() == store.last_event_id()

    # Latency: one event per transaction, a running relay, a subscriber timing each arrival.
    arrived: dict[int, float] = {}
    done = threading.Event()
    total = 200

    def on_batch(batch) -> None:
        now = time.perf_counter()
        for d in batch:
            arrived[d.event_id] = now
        if len(arrived) >= total:
            done.set()

    sub = bus.subscribe(on_batch, after=bus.position_of(bus.last_event_id()))
    relay.start()
    committed: dict[int, float] = {}
    for i in range(total):
        with store.transaction() as tx:
            tx.events.append(_event(i))
        committed[store.last_event_id()] = time.perf_counter()
        time.sleep(0.005)
    done.wait(60)
    relay.stop()
    sub.close()
    _drop(bus)
    store.close()
    store.engine.dispose()
    lags = sorted((arrived[i] - t) * 1000 for i, t in committed.items() if i in arrived)
    return {
        "commit_per_s": n / commit_s,
        "relay_per_s": n / relay_s,
        "lag_median_ms": statistics.median(lags),
        "lag_p95_ms": lags[int(len(lags) * 0.95) - 1],
        "missing": total - len(lags),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--pg", action="store_true", help="also on PostgreSQL at " + PG)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("SQLite", lambda k: f"sqlite:///{Path(tmp) / f'{k}.db'}")]
        for store_name, url_of in stores:
            for kind in ("memory", "redis"):
                rows.append((store_name, kind, measure(url_of(kind), kind, args.events)))
    if args.pg:
        for kind in ("memory", "redis"):
            with temporary_schema(PG) as url:
                rows.append(("PostgreSQL", kind, measure(url, kind, args.events)))
    lines = [
        "## events: outbox relay to the bus (bench/events_relay.py)",
        "",
        f"{args.events:,} InstanceStatusChanged events committed 10 per transaction, then relayed from the",
        "outbox in one go (relay throughput); then 200 single-event commits with the relay running and a",
        "subscriber on the bus (commit-to-subscriber lag: the relay is woken by the commit hook).",
        "",
        "| store | bus | commit events/s | relay events/s | lag median ms | lag p95 ms | missing |",
        "|---|---|---|---|---|---|---|",
    ]
    for store_name, kind, r in rows:
        lines.append(
            f"| {store_name} | {kind} | {r['commit_per_s']:,.0f} | {r['relay_per_s']:,.0f} | "
            f"{r['lag_median_ms']:.1f} | {r['lag_p95_ms']:.1f} | {r['missing']} |"
        )
    body = "\n".join(lines)
    print(body)
    write_section("events-relay", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
