"""The service's metrics in Prometheus text format (`GET /metrics` on the API).

Totals only: pipelines by state, instances by status, attempts started, succeeded and failed
since this process started (read from the outbox, so attempts run by workers on other hosts
count too), the scheduler's ticks in this process, and the task queue's depth. No label carries
a pipeline id, an owner, a worker group or any other name an owner chose: the endpoint answers
without a key (as Prometheus scrapes), so it must tell a caller nothing beyond how busy the
service is. See docs/service.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from tailrace.events.model import AttemptStatusChanged, InstanceStatusChanged
from tailrace.state import PipelineState, StateStore, Status


class SchedulerStats:
    """Ticks of the scheduler loop in this process (runtime.scheduler updates it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ticks = 0
        self.last_tick: float | None = None
        self.failed = 0

    def ticked(self, *, ok: bool = True) -> None:
        with self._lock:
            self.ticks += 1
            self.last_tick = time.time()
            self.failed += 0 if ok else 1


SCHEDULER = SchedulerStats()


class AttemptCounters:
    """Attempts started, succeeded and failed since `start()`, counted from the outbox."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.after: int | None = None
        self.started = self.succeeded = self.failed = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.after = self.store.last_event_id()

    def update(self) -> None:
        with self._lock:
            if self.after is None:
                self.start()
            while records := self.store.events_after(self.after or 0, limit=1000):
                self.after = records[-1].id
                for r in records:
                    e = r.event
                    # An attempt is created RUNNING as its instance moves to RUNNING (a claim).
                    if isinstance(e, InstanceStatusChanged) and e.new == "RUNNING" and e.old != "RUNNING":
                        self.started += 1
                    if not isinstance(e, AttemptStatusChanged):
                        continue
                    if e.new == "FINISHED":
                        self.succeeded += 1
                    elif e.new in ("FAILED", "TIMEDOUT"):
                        self.failed += 1


def _grouped(store: StateStore, column: str, table: str) -> dict[str, int]:
    import sqlalchemy as sa

    from tailrace.state import schema

    engine = getattr(store, "engine", None)
    if engine is None:
        return {}
    t = getattr(schema, table)
    col = t.c[column]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(col, sa.func.count()).group_by(col)).all()
    return {str(k): int(n) for k, n in rows}


def _lines(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float | int]]) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        out.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")
    return out


def exposition(store: StateStore, counters: AttemptCounters, scheduler: SchedulerStats = SCHEDULER) -> str:
    """The metrics as Prometheus text exposition format 0.0.4."""
    counters.update()
    pipelines = _grouped(store, "state", "pipelines")
    instances = _grouped(store, "status", "instances")
    out: list[str] = []
    out += _lines(
        "tailrace_pipelines",
        "gauge",
        "Pipelines by state (all owners).",
        ((f'{{state="{s.value}"}}', pipelines.get(s.value, 0)) for s in PipelineState),
    )
    out += _lines(
        "tailrace_instances",
        "gauge",
        "Instances by status (all owners).",
        ((f'{{status="{s.value}"}}', instances.get(s.value, 0)) for s in Status),
    )
    for what, value in (
        ("started", counters.started),
        ("succeeded", counters.succeeded),
        ("failed", counters.failed),
    ):
        out += _lines(
            f"tailrace_attempts_{what}_total",
            "counter",
            f"Attempts {what} since this server started (every task runner sharing the database).",
            [("", value)],
        )
    out += _lines(
        "tailrace_task_queue_depth",
        "gauge",
        "Instances waiting for a task runner.",
        [("", instances.get(Status.WAITING_FOR_RUNNER.value, 0))],
    )
    out += _lines(
        "tailrace_scheduler_ticks_total",
        "counter",
        "Scheduler ticks in this process.",
        [("", scheduler.ticks)],
    )
    out += _lines(
        "tailrace_scheduler_tick_failures_total",
        "counter",
        "Scheduler ticks in this process that failed (see the service log).",
        [("", scheduler.failed)],
    )
    if scheduler.last_tick is not None:
        out += _lines(
            "tailrace_scheduler_last_tick_timestamp_seconds",
            "gauge",
            "When this process's scheduler last ticked (Unix time).",
            [("", round(scheduler.last_tick, 3))],
        )
    return "\n".join(out) + "\n"
