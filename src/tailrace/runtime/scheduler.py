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
from datetime import datetime, timedelta
from typing import Any

from tailrace.clock import Clock
from tailrace.plan import Window
from tailrace.runtime.activation import ActiveDefinition, to_records
from tailrace.runtime.metrics import SCHEDULER
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
    canceled: int = 0
    """Slices of deactivation cancels run."""
    backlog: int = 0
    """Pipelines left with work due now when the tick's steps ran out."""
    finished_pipelines: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(
            self.windows
            or self.due
            or self.expired
            or self.finished_pipelines
            or self.backlog
            or self.canceled
        )


@dataclass
class _Cursor:
    key: tuple[object, ...]
    index: int
    windows: Iterator[Window]
    ahead: list[Window] = field(default_factory=list)
    """Windows read from `windows` but not created yet (the next ones, in order)."""


class Scheduler:
    def __init__(self, *, store: StateStore, transitions: Transitions, clock: Clock) -> None:
        self.store = store
        self.transitions = transitions
        self.clock = clock
        self.config = transitions.config
        self._cursors: dict[str, _Cursor] = {}
        self._throttled: dict[str, datetime] = {}
        self._stop: threading.Event | None = None

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
        """Give every due pipeline a slice (one transaction) in turn, round after round, until
        each has caught up or the tick's `steps_per_tick` are spent: a long backfill is created
        over several ticks and never holds back another pipeline (or owner) for long."""
        with self.store.transaction(readonly=True) as tx:
            pending = tx.pipelines.due(now)
        budget = self.config.steps_per_tick
        until = time.monotonic() + self.config.tick_seconds
        while pending and budget > 0 and not (self._stop is not None and self._stop.is_set()):
            more: list[str] = []
            for pid in pending:
                if budget <= 0 or time.monotonic() >= until:
                    budget = 0
                    more.append(pid)
                    continue
                budget -= 1
                if self._advance_one(pid, now, report):
                    more.append(pid)
            pending = more
        report.backlog = len(pending)

    def _advance_one(self, pid: str, now: datetime, report: TickReport) -> bool:
        """One slice of a pipeline's work; True when it has more to do now."""
        with self.store.transaction() as tx:
            pipeline = tx.pipelines.lock(pid, skip_locked=True)
            if pipeline is None:
                return False
            step = Step(tx=tx, pipeline=pipeline, now=now)
            if pipeline.state is PipelineState.DEACTIVATING:
                return self._drain(step, report)
            if pipeline.state is not PipelineState.SCHEDULED or pipeline.active_version is None:
                return False
            if pipeline.next_window_at is None or pipeline.next_window_at > now:
                return False
            allowance = self._hourly_allowance(step)
            if allowance <= 0:
                return False
            report.pipelines += 1
            active = self.transitions.active(step, pipeline.active_version)
            windows, next_at, exhausted = self._due_windows(
                pipeline.id, active, pipeline.windows_created, now
            )
            paused = frozenset(c.id for c in tx.components.list(pid) if c.status is Status.PAUSED)
            created: list[Window] = []
            made = 0
            began = time.monotonic()
            for window in windows:
                if made >= min(allowance, self.config.instances_per_step):
                    break
                if made and time.monotonic() - began >= self.config.step_seconds:
                    break
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
                made += len(records)
                fresh = tx.instances.find_many(pid, [r.id for r in records])
                self.transitions.evaluate(step, list(fresh.values()))
                self.transitions.evaluate(step, tx.instances.dependents(pid, list(fresh)))
            if len(created) < len(windows):
                # Cut short by the instance budget: the cursor gives the rest back next time.
                cursor = self._cursors[pid]
                cursor.ahead[:0] = windows[len(created) :]
                cursor.index -= len(windows) - len(created)
                next_at, exhausted = now, False
            report.instances += made
            report.windows += len(created)
            changes: dict[str, Any] = {"windows_created": pipeline.windows_created + len(created)}
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

    def _drain(self, step: Step, report: TickReport) -> bool:
        """A DEACTIVATING pipeline: cancel a slice of its waiting work (while next_window_at says
        some is left, see PipelineService.deactivate); INACTIVE once nothing runs."""
        tx, pipeline, now = step.tx, step.pipeline, step.now
        if pipeline.next_window_at is not None:
            more = self.transitions.cancel_waiting(
                step, "pipeline deactivated", limit=self.config.cancel_per_step
            )
            report.canceled += 1
            if more:
                tx.pipelines.update(pipeline.id, next_window_at=now)
                return True
            tx.pipelines.update(pipeline.id, next_window_at=None)
        if not tx.attempts.running(pipeline.id):
            tx.pipelines.update(
                pipeline.id, state=PipelineState.INACTIVE, deactivated_at=now, next_window_at=None
            )
        return False

    def _hourly_allowance(self, step: Step) -> int:
        """Instances the pipeline's owner may still have created this hour ([limits]
        instances_per_hour); at 0 the pipeline waits `throttle_recheck`."""
        limits = self.transitions.limits
        pipeline, now = step.pipeline, step.now
        made = step.tx.instances.created_since(pipeline.owner, now - timedelta(hours=1))
        left = limits.instances_per_hour - made
        if left <= 0:
            if self._throttled.get(pipeline.owner) != now.replace(minute=0, second=0, microsecond=0):
                self._throttled[pipeline.owner] = now.replace(minute=0, second=0, microsecond=0)
                log.warning(
                    "owner %r reached %d instances created in the last hour ([limits] instances_per_hour); "
                    "its schedules wait",
                    pipeline.owner,
                    limits.instances_per_hour,
                )
            step.tx.pipelines.update(pipeline.id, next_window_at=now + self.config.throttle_recheck)
        return left

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
            window = cursor.ahead.pop(0) if cursor.ahead else next(cursor.windows, None)
            if window is None:
                return out, None, True
            if window.run_at > horizon:
                cursor.ahead.insert(0, window)
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
        self._stop = stop
        while not stop.is_set():
            wake.clear()
            try:
                report = self.tick()
                SCHEDULER.ticked()
                if report.busy:
                    log.debug("tick: %s", report)
                if report.backlog:
                    # More is due now: tick again soon, after a pause in which the API and the
                    # runners get the store (ticks are bounded: steps_per_tick).
                    stop.wait(0.01)
                    continue
                upcoming = self.next_wakeup()
            except Exception:  # the loop must outlive a bad pipeline or a database hiccup
                SCHEDULER.ticked(ok=False)
                log.exception("scheduler tick failed")
                upcoming = None
            delay = max_sleep
            if upcoming is not None:
                delay = min(max_sleep, max((upcoming - self.clock.now()).total_seconds(), 0.0))
            if delay > 0:
                wake.wait(delay)
            else:
                time.sleep(0.005)  # something is due now: yield, then tick again
