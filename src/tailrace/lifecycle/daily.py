"""The daily lifecycle run inside `tailrace up`: once per UTC day across every process sharing
the metadata database (a lease named after the day decides who runs it), reported as a
LifecycleRunFinished event so the console and subscribers see it.

A run that dies half-way is finished by the next day's run (the store recovers half-done moves
first); `tailrace lifecycle run` remains the way to run one by hand.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from tailrace.clock import Clock, SystemClock
from tailrace.errors import ConflictError
from tailrace.events.model import LifecycleRunFinished
from tailrace.lifecycle import runner
from tailrace.lifecycle.configs import LifecycleConfigs
from tailrace.periodic import PeriodicThread
from tailrace.storage.tiered import TieredLocalStore

log = logging.getLogger("tailrace.lifecycle")


class DailyLifecycle(PeriodicThread):
    """Call `run_due()` as often as you like (the loop does, every `interval` seconds): it runs
    the lifecycle rules at most once per UTC day, in whichever process takes the day's lease."""

    def __init__(
        self,
        *,
        state: Any,
        store: TieredLocalStore,
        configs: LifecycleConfigs,
        clock: Clock | None = None,
        interval: float = 300.0,
    ) -> None:
        super().__init__(interval)
        self.state = state
        self.store = store
        self.configs = configs
        self.clock = clock or SystemClock()
        self.holder = f"lifecycle-{uuid.uuid4().hex[:12]}"
        self._done: str | None = None

    def run_due(self) -> runner.RunReport | None:
        """Today's run when nobody has done it yet; None when it was done (here or elsewhere)."""
        now = self.clock.now()
        day = now.strftime("%Y-%m-%d")
        if self._done == day:
            return None
        with self.state.transaction() as tx:
            # Kept two days: whoever took it, the day is done (or being done) by them.
            mine = tx.leases.acquire(f"lifecycle:{day}", self.holder, now=now, until=now + timedelta(days=2))
        self._done = day
        if not mine:
            return None
        try:
            report = runner.run(self.store, self.configs.all(), now)
        except ConflictError as exc:  # a `tailrace lifecycle run` by hand holds the store
            log.warning("lifecycle: today's run skipped: %s", exc)
            return None
        self._record(report, now)
        for line in report.lines():
            log.info("%s", line)
        return report

    def _record(self, report: runner.RunReport, now: datetime) -> None:
        expired = sum(t.objects for (_, _, a), t in report.actions.items() if a == "expire")
        moved = sum(t.objects for (_, _, a), t in report.actions.items() if a != "expire")
        moved_bytes = sum(t.bytes for (_, _, a), t in report.actions.items() if a != "expire")
        event = LifecycleRunFinished(
            at=now,
            transitioned=moved,
            expired=expired,
            bytes_moved=moved_bytes,
            detail={"scanned": report.scanned, "errors": len(report.errors)},
        )
        with self.state.transaction() as tx:
            tx.events.append(event)

    thread_name, what = "tailrace-lifecycle", "lifecycle run"

    def round(self) -> object:
        return self.run_due()
