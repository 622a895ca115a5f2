"""The daily lifecycle run of `tailrace up`: once per UTC day across processes sharing the
database, reported as a LifecycleRunFinished event."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tailrace.clock import FrozenClock
from tailrace.events.model import LifecycleRunFinished
from tailrace.lifecycle.configs import LifecycleConfigs
from tailrace.lifecycle.daily import DailyLifecycle
from tailrace.lifecycle.rules import MIN_SIZE_VARIES, parse_configuration
from tailrace.state import SqlStateStore, create_engine
from tailrace.storage.tiered import TieredLocalStore

RULE = {
    "Rules": [
        {
            "ID": "raw-logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}],
        }
    ]
}
CREATED = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def test_one_run_a_day_whichever_process_takes_it(tmp_path: Path) -> None:
    clock = FrozenClock(CREATED)
    state = SqlStateStore(create_engine(f"sqlite:///{tmp_path}/state.db"), clock=clock)
    store = TieredLocalStore(tmp_path / "s3", now=clock.now)
    body = gzip.compress(b"GET / 200\n" * 100)
    store.put("weblogs", "logs/20260301/host-10_1.gz", body)
    ts = CREATED.timestamp()
    os.utime(store.hot_path("weblogs", "logs/20260301/host-10_1.gz"), (ts, ts))
    configs = LifecycleConfigs(state.engine)
    configs.put("weblogs", parse_configuration(RULE, minimum_object_size=MIN_SIZE_VARIES))
    # Two `tailrace up` processes on one database: each has its own runner.
    first, second = (DailyLifecycle(state=state, store=store, configs=configs, clock=clock) for _ in range(2))

    runs = []
    for day in range(10):
        clock.set(CREATED + timedelta(days=day, hours=1))
        done = [r for r in (first.run_due(), second.run_due(), first.run_due()) if r is not None]
        assert len(done) == 1  # exactly one run per day, in one of the processes
        runs.append(done[0])

    # Created 2026-03-01: the transition is due at 00:00 on 03-09 (creation + 7 days, next midnight).
    moved_on = [i for i, r in enumerate(runs) if r.actions]
    assert moved_on == [8]
    assert store.record("weblogs", "logs/20260301/host-10_1.gz").storage_class == "GLACIER"
    finished = [e.event for e in state.events_after(0) if isinstance(e.event, LifecycleRunFinished)]
    assert len(finished) == 10
    assert [e.transitioned for e in finished] == [0] * 8 + [1, 0]
    assert finished[8].bytes_moved == len(body)
    state.close()
    state.engine.dispose()
