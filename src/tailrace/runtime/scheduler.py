"""The scheduler: one `tick(now)` creates due instances (slightly ahead of time), runs timers
(late actions, timeouts, run times), expires lost leases, and finishes or deactivates pipelines.

A tick reads only what is due (indexed: pipelines by next window, instances by due time,
attempts by lease), so its cost follows the due work, not the history. Each pipeline is handled
in its own transaction under the pipeline's row lock; ticks from several scheduler processes
are therefore safe (they skip each other's pipelines on PostgreSQL), only redundant.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from tailrace.clock import Clock
from tailrace.plan import Window
from tailrace.runtime.activation import ActiveDefinition, to_records
from tailrace.runtime.transitions import Step, Transitions
from tailrace.state import TERMINAL, PipelineState, StateStore, Status

log = logging.getLogger("tailrace.scheduler")
OPEN = frozenset(Status) - TERMINAL


@dataclass
class TickReport:
    windows: int = 0
    instances: int = 0
    due: int = 0
    expired: int = 0
    pipelines: int = 0
    evaluated: int = 0
    finished_pipelines: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.windows or self.due or self.expired or self.finished_pipelines)


@dataclass
class _Cursor:
    key: tuple[object, ...]
    index: int
    windows: Iterator[Window]
    peeked: Window | None = None


class Scheduler:
    def __init__(self, *, store: StateStore, transitions: Transitions, clock: Clock) -> None:
        self.store = store
        self.transitions = transitions
        self.clock = clock
        self.config = transitions.config
        self._cursors: dict[str, _Cursor] = {}

    # --- one tick ---------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.clock.now()
        report = TickReport()
        self._expire_leases(now, report)
        self._advance_pipelines(now, report)
        self._run_timers(now, report)
        return report

    def _per_pipeline(
        self,
        items: list[tuple[str, str]],
        now: datetime,
        report: TickReport,
        handle: Callable[[Step, str], bool],
    ) -> None:
        """Run handle(step, object id) for each (pipeline, object) pair, one transaction (under the
        pipeline's lock) per pipeline; handle re-reads the object and says whether it acted."""
        by_pipeline: dict[str, list[str]] = defaultdict(list)
        for pid, oid in items:
            by_pipeline[pid].append(oid)
        for pid, oids in by_pipeline.items():
            with self.store.transaction() as tx:
                pipeline = tx.pipelines.lock(pid)
                if pipeline is None:
                    continue
                step = Step(tx=tx, pipeline=pipeline, now=now)
                for oid in oids:
                    handle(step, oid)
                report.evaluated += step.evaluated

    def _expire_leases(self, now: datetime, report: TickReport) -> None:
        with self.store.transaction(readonly=True) as tx:
            expired = [(a.pipeline_id, a.id) for a in tx.attempts.expired(now, limit=500)]

        def expire(step: Step, attempt_id: str) -> bool:
            attempt = step.tx.attempts.find(step.pipeline.id, attempt_id)
            if attempt is None or attempt.status is not Status.RUNNING:
                return False
            if attempt.lease_expires_at is None or attempt.lease_expires_at >= now:
                return False  # renewed meanwhile
            inst = step.tx.instances.find(step.pipeline.id, attempt.instance_id)
            if inst is None:
                return False
            self.transitions.expire(step, inst, attempt)
            report.expired += 1
            return True

        self._per_pipeline(expired, now, report, expire)

    def _advance_pipelines(self, now: datetime, report: TickReport) -> None:
        with self.store.transaction(readonly=True) as tx:
            due = tx.pipelines.due(now)
        for pid in due:
            # A long backfill is created over several short transactions.
            for _ in range(10_000):
                more = self._advance_one(pid, now, report)
                if not more:
                    break

    def _advance_one(self, pid: str, now: datetime, report: TickReport) -> bool:
        with self.store.transaction() as tx:
            pipeline = tx.pipelines.lock(pid, skip_locked=True)
            if pipeline is None:
                return False
            step = Step(tx=tx, pipeline=pipeline, now=now)
            if pipeline.state is PipelineState.DEACTIVATING:
                if not tx.attempts.running(pid):
                    tx.pipelines.update(
                        pid, state=PipelineState.INACTIVE, deactivated_at=now, next_window_at=None
                    )
                return False
            if pipeline.state is not PipelineState.SCHEDULED or pipeline.active_version is None:
                return False
            if pipeline.next_window_at is None or pipeline.next_window_at > now:
                return False
            report.pipelines += 1
            active = self.transitions.active(step, pipeline.active_version)
            windows, next_at, exhausted = self._due_windows(
                pipeline.id, active, pipeline.windows_created, now
            )
            paused = frozenset(c.id for c in tx.components.list(pid) if c.status is Status.PAUSED)
            created = []
            for window in windows:
                records = to_records(
                    active.plan(window),
                    pipeline_id=pid,
                    window=pipeline.windows_created + len(created),
                    version=active.version,
                    now=now,
                    paused_components=paused,
                )
                tx.instances.add_many(records)
                created.append(window)
                report.instances += len(records)
                fresh = tx.instances.find_many(pid, [r.id for r in records])
                self.transitions.evaluate(step, list(fresh.values()))
                self.transitions.evaluate(step, tx.instances.dependents(pid, list(fresh)))
            report.windows += len(created)
            changes: dict[str, object] = {"windows_created": pipeline.windows_created + len(created)}
            if exhausted and not created:
                if tx.instances.count_in_status(pid, OPEN) == 0:
                    tx.pipelines.update(
                        pid, state=PipelineState.FINISHED, finished_at=now, next_window_at=None, **changes
                    )
                    report.finished_pipelines.append(pid)
                    self._cursors.pop(pid, None)
                    return False
                changes["next_window_at"] = now + self.config.finish_check
            else:
                changes["next_window_at"] = next_at if next_at is not None else now
            if created:
                changes["latest_run_at"] = max(w.run_at for w in created)
            tx.pipelines.update(pid, **changes)
            report.evaluated += step.evaluated
            return bool(created) and next_at is not None and next_at <= now

    def _due_windows(
        self, pid: str, active: ActiveDefinition, first: int, now: datetime
    ) -> tuple[list[Window], datetime | None, bool]:
        """Up to windows_per_step windows due by now+lookahead from index `first`; the time the
        next one falls due; whether the schedule has ended."""
        key = (active.version, active.activated_at, active.start_override)
        cursor = self._cursors.get(pid)
        if cursor is None or cursor.key != key or cursor.index != first:
            cursor = _Cursor(key=key, index=first, windows=active.windows(first))
            self._cursors[pid] = cursor
        horizon = now + self.config.lookahead
        out: list[Window] = []
        while len(out) < self.config.windows_per_step:
            window = cursor.peeked or next(cursor.windows, None)
            cursor.peeked = None
            if window is None:
                return out, None, True
            if window.run_at > horizon:
                cursor.peeked = window
                return out, window.run_at - self.config.lookahead, False
            out.append(window)
            cursor.index += 1
        return out, now, False

    def _run_timers(self, now: datetime, report: TickReport) -> None:
        with self.store.transaction(readonly=True) as tx:
            due = [(i.pipeline_id, i.id) for i in tx.instances.due(now, limit=1000)]

        def fire(step: Step, instance_id: str) -> bool:
            inst = step.tx.instances.find(step.pipeline.id, instance_id)
            if inst is None or inst.due_at is None or inst.due_at > now:
                return False
            report.due += 1
            self.transitions.on_due(step, inst)
            return True

        self._per_pipeline(due, now, report, fire)

    # --- the loop ---------------------------------------------------------------------------

    def next_wakeup(self) -> datetime | None:
        """The earliest time something becomes due (None: nothing scheduled)."""
        with self.store.transaction(readonly=True) as tx:
            return tx.next_wakeup()

    def run(self, stop: threading.Event, wake: threading.Event, *, max_sleep: float = 1.0) -> None:
        """Tick until `stop` is set; sleep until the next due time, `max_sleep` at most (other
        processes may add work), or until `wake` is set."""
        while not stop.is_set():
            wake.clear()
            try:
                report = self.tick()
                if report.busy:
                    log.debug("tick: %s", report)
                if report.windows and report.windows >= self.config.windows_per_step:
                    continue
                upcoming = self.next_wakeup()
            except Exception:  # the loop must outlive a bad pipeline or a database hiccup
                log.exception("scheduler tick failed")
                upcoming = None
            delay = max_sleep
            if upcoming is not None:
                delay = min(max_sleep, max((upcoming - self.clock.now()).total_seconds(), 0.0))
            if delay > 0:
                wake.wait(delay)
            else:
                time.sleep(0.005)  # something is due now: yield, then tick again
