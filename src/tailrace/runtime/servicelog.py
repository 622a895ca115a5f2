"""The service's log of failures: one line per failed attempt, for whoever watches `tailrace up`.

It follows the outbox (the typed events every process sharing the metadata database commits), so
an attempt that failed on a worker on another host shows here too. A line names the pipeline, the
component, the period, the attempt, what happens next (a retry, or nothing: the instance failed)
and where the attempt's log is:

    attempt failed: df-0123 stats 2012-12-24T00:00:00 attempt 1, will retry: <error> (log: s3://...)

Pipeline ids and object ids only: the error message and log location are the owner's, but the
operator who runs the service already sees the whole database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tailrace.clock import format_dp
from tailrace.events.model import AttemptStatusChanged
from tailrace.state import StateStore
from tailrace.state.records import Status

log = logging.getLogger("tailrace.attempts")

FAILED = frozenset({"FAILED", "TIMEDOUT"})
GAVE_UP = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.TIMEDOUT, Status.CANCELED})


class FailureLog:
    def __init__(
        self, store: StateStore, say: Callable[[str], None] | None = None, *, poll: float = 1.0
    ) -> None:
        self.store = store
        self.say = say or log.warning
        self.poll = poll
        self.after: int | None = None

    def start_now(self) -> None:
        """Report only what fails from now on (not the history in the outbox)."""
        self.after = self.store.last_event_id()

    def check(self) -> int:
        """Report the attempts that failed since the last check; returns how many."""
        if self.after is None:
            self.start_now()
        reported = 0
        while True:
            records = self.store.events_after(self.after or 0, limit=500)
            if not records:
                return reported
            self.after = records[-1].id
            for record in records:
                e = record.event
                if isinstance(e, AttemptStatusChanged) and e.new in FAILED and e.pipeline_id:
                    self.say(self.describe(e))
                    reported += 1

    def describe(self, e: AttemptStatusChanged) -> str:
        pid = e.pipeline_id or ""
        with self.store.transaction(readonly=True) as tx:
            attempt = tx.attempts.find(pid, e.object_id)
            inst = tx.instances.find(pid, e.instance) if e.instance else None
        if inst is None or attempt is None:
            return f"attempt {e.new.lower()}: {pid} {e.object_id}"
        number = attempt.number
        if number < inst.attempt_count:
            next_step = "retried"  # read after a later attempt began
        elif inst.status in GAVE_UP:
            next_step = "no retries left"
        else:
            next_step = "will retry"
        error = attempt.error_message or e.new
        where = attempt.log_location or "no log"
        first = error.strip().splitlines()[0][:300] if error.strip() else e.new
        return (
            f"attempt {e.new.lower()}: {pid} {inst.component_id} {format_dp(inst.scheduled_start)} "
            f"attempt {number}, {next_step}: {first} (log: {where})"
        )

    def run(self, stop: threading.Event) -> None:
        self.start_now()
        while not stop.wait(self.poll):
            try:
                self.check()
            except Exception as exc:  # the database away for a moment: say so, go on
                log.warning("could not read the events outbox: %s: %s", type(exc).__name__, exc)
