"""Handing work to task runners the way Task Runner received it: claim (PollForTask), progress
(ReportTaskProgress: heartbeat and lease extension), and the outcome (SetTaskStatus).

A claim is a lease on one attempt. A runner that stops reporting loses it: the attempt is
failed as LOST and retried, and whatever the runner says afterwards is refused.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tailrace.clock import Clock
from tailrace.ids import attempt_id, task_id
from tailrace.limits import Limits
from tailrace.runtime.activation import RESOURCE_QUEUE, seconds
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.logs import attempt_log_uri
from tailrace.runtime.transitions import Step, Transitions
from tailrace.state import (
    Attempt,
    Instance,
    Pipeline,
    StateStore,
    Status,
    TaskNotFound,
    TaskRunner,
    Transaction,
)

OUTCOMES = ("FINISHED", "FAILED", "FALSE", "CANCELED")


class InvalidTaskStatus(InvalidRequest):
    """SetTaskStatus with a status or errorId the service does not take."""


@dataclass(frozen=True, kw_only=True)
class Task:
    task_id: str
    pipeline_id: str
    attempt_id: str
    attempt: int
    instance: Instance
    pipeline: Pipeline
    """The pipeline as it was at the claim (its activation picks the definition to run)."""
    lease_expires_at: datetime
    lease: timedelta
    log_uri: str


class TaskBroker:
    def __init__(
        self,
        *,
        store: StateStore,
        transitions: Transitions,
        clock: Clock,
        home: Path,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.transitions = transitions
        self.clock = clock
        self.home = home
        self.limits = limits or Limits()
        self._served: dict[str, int] = {}
        """When each owner was last handed a task here (a claim counter): ties go round-robin."""
        self._claims = itertools.count(1)
        self._served_lock = threading.Lock()

    def lease_for(self, inst: Instance) -> timedelta:
        return seconds(inst.spec, "report_progress_timeout") or self.transitions.config.lease

    def _peek(self, queues: Collection[str], owner: str | None = None) -> bool:
        # SQLite: a plain read, so idle runners do not take the database's write lock to find
        # there is nothing to do. PostgreSQL needs no peek: claims skip each other's locks.
        with self.store.transaction(readonly=True) as tx:
            return tx.instances.claim_next(queues, self.clock.now(), owner=owner) is not None

    def claim(
        self, queues: Collection[str], *, runner_id: str, hostname: str | None, owner: str | None = None
    ) -> Task | None:
        """Take the oldest ready instance of `queues` (of `owner`'s pipelines, when given) and
        start its next attempt, or None."""
        if self.store.dialect == "sqlite" and not self._peek(queues, owner):
            return None
        now = self.clock.now()
        with self.store.transaction() as tx:
            inst = self._fair_next(tx, queues, now, owner)
            if inst is None:
                return None
            pipeline = tx.pipelines.get(inst.pipeline_id)
            number = inst.attempt_count + 1
            aid = attempt_id(inst.id, number)
            lease = self.lease_for(inst)
            step = Step(tx=tx, pipeline=pipeline, now=now)
            root = None
            if inst.category != "RESOURCE":
                root = self.transitions.active(step, inst.definition_version).log_root(inst.component_id)
            log_uri = attempt_log_uri(
                pipeline_log_uri=root,
                home=self.home,
                pipeline_id=inst.pipeline_id,
                component_id=inst.component_id,
                instance_id=inst.id,
                attempt=number,
            )
            attempt = Attempt(
                pipeline_id=inst.pipeline_id,
                id=aid,
                instance_id=inst.id,
                number=number,
                status=Status.RUNNING,
                task_id=task_id(),
                queue=inst.queue,
                runner_id=runner_id,
                hostname=hostname,
                lease_expires_at=now + lease,
                heartbeat_at=now,
                started_at=now,
                log_location=log_uri,
            )
            tx.attempts.add(attempt)
            claimed = tx.instances.update(
                inst.pipeline_id,
                inst.id,
                expect_status={Status.WAITING_FOR_RUNNER},
                status=Status.RUNNING,
                attempt_count=number,
                head_attempt=aid,
                started_at=inst.started_at or now,
                due_at=self.transitions.next_due(
                    dataclasses.replace(inst, started_at=inst.started_at or now),
                    Status.RUNNING,
                    now,
                    attempt=attempt,
                ),
                detail={"attempt": aid, "runner": runner_id, "hostname": hostname},
            )
            assert claimed is not None  # claim_next locked the row for this transaction
            return Task(
                task_id=attempt.task_id,
                pipeline_id=inst.pipeline_id,
                attempt_id=aid,
                attempt=number,
                instance=claimed,
                pipeline=pipeline,
                lease_expires_at=now + lease,
                lease=lease,
                log_uri=log_uri,
            )

    def _fair_next(
        self, tx: Transaction, queues: Collection[str], now: datetime, owner: str | None
    ) -> Instance | None:
        """Runners are shared between owners: the owner with the fewest running attempts goes
        first (ties: the one served least recently here, then the longest waiting), and owners
        at [limits] running_attempts wait. Within an owner, the oldest period goes first."""
        ready = tx.instances.ready_owners(queues, now)
        if owner is not None:
            ready = {owner: ready[owner]} if owner in ready else {}
        if not ready:
            return None
        running = tx.attempts.running_by_owner(exclude_queues=(RESOURCE_QUEUE,))
        # Resource pools are not attempts of the owner's work: hosting one is never held back.
        capped = any(q != RESOURCE_QUEUE for q in queues)
        most = self.limits.running_attempts
        with self._served_lock:
            order = sorted(
                (o for o in ready if not capped or running.get(o, 0) < most),
                key=lambda o: (running.get(o, 0), self._served.get(o, 0), ready[o] or now, o),
            )
        for candidate in order:
            inst = tx.instances.claim_next(queues, now, owner=candidate)
            if inst is not None:
                with self._served_lock:
                    self._served[candidate] = next(self._claims)
                return inst
        return None

    def report_progress(self, task: str, fields: Mapping[str, Any] | None = None) -> bool:
        """Extend the task's lease; True when the runner must stop (canceled).

        :raises TaskNotFound: if the task is unknown, or its lease was lost (the attempt has been
            failed and retried: a runner that hears this must drop the task).
        """
        now = self.clock.now()
        lost = False
        with self.store.transaction() as tx:
            attempt = tx.attempts.by_task(task)
            if attempt is None:
                raise TaskNotFound(task)
            if attempt.status is not Status.RUNNING:
                if attempt.cancel_reason:
                    return True
                raise TaskNotFound(task, f"attempt {attempt.id} is {attempt.status}")
            if attempt.lease_expires_at is not None and attempt.lease_expires_at < now:
                lost = self._expire(tx, attempt, now)
            else:
                inst = tx.instances.get(attempt.pipeline_id, attempt.instance_id)
                progress = dict(attempt.progress)
                progress.update(fields or {})
                tx.attempts.update(
                    attempt.pipeline_id,
                    attempt.id,
                    expect_status={Status.RUNNING},
                    lease_expires_at=now + self.lease_for(inst),
                    heartbeat_at=now,
                    progress=progress,
                )
                return attempt.cancel_reason is not None
        if lost:
            raise TaskNotFound(task, "its lease expired before this report; the attempt is being retried")
        return True

    def set_status(
        self,
        task: str,
        status: str,
        *,
        error_id: str | None = None,
        error_message: str | None = None,
        error_stack_trace: str | None = None,
    ) -> None:
        """Record how the attempt ended (FINISHED, FAILED, FALSE for a precondition; CANCELED
        gives the task back untried).

        :raises TaskNotFound: as report_progress.
        :raises InvalidTaskStatus: for another status, or an errorId starting with Service_.
        """
        status = status.upper()
        if status not in OUTCOMES:
            raise InvalidTaskStatus(f"taskStatus must be one of FINISHED, FAILED, FALSE; found {status!r}")
        if error_id and error_id.startswith("Service_"):
            raise InvalidTaskStatus(f"errorId must not start with 'Service_'; found {error_id!r}")
        now = self.clock.now()
        lost = False
        with self.store.transaction() as tx:
            found = tx.attempts.by_task(task)
            if found is None:
                raise TaskNotFound(task)
            pipeline = tx.pipelines.lock(found.pipeline_id)
            attempt = tx.attempts.find(found.pipeline_id, found.id)
            if pipeline is None or attempt is None:
                raise TaskNotFound(task, "its pipeline was deleted")
            if attempt.status is not Status.RUNNING:
                if attempt.cancel_reason:
                    return  # the service ended it already (cancel, timeout, shutdown)
                raise TaskNotFound(task, f"attempt {attempt.id} is {attempt.status}")
            if attempt.lease_expires_at is not None and attempt.lease_expires_at < now:
                lost = self._expire(tx, attempt, now)
            else:
                inst = tx.instances.get(attempt.pipeline_id, attempt.instance_id)
                step = Step(tx=tx, pipeline=pipeline, now=now)
                self.transitions.attempt_ended(
                    step,
                    inst,
                    attempt,
                    status,
                    error_id=error_id,
                    error_message=error_message,
                    error_stack_trace=error_stack_trace,
                )
        if lost:
            raise TaskNotFound(task, "its lease expired before this report; the attempt is being retried")

    def _expire(self, tx: Any, attempt: Attempt, now: datetime) -> bool:
        pipeline = tx.pipelines.lock(attempt.pipeline_id)
        fresh = tx.attempts.find(attempt.pipeline_id, attempt.id)
        if pipeline is None or fresh is None or fresh.status is not Status.RUNNING:
            return True
        inst = tx.instances.get(attempt.pipeline_id, attempt.instance_id)
        self.transitions.expire(Step(tx=tx, pipeline=pipeline, now=now), inst, fresh)
        return True

    def runner_heartbeat(self, runner_id: str, *, worker_group: str | None, hostname: str | None) -> bool:
        """ReportTaskRunnerHeartbeat: True when the runner should terminate."""
        with self.store.transaction() as tx:
            stored = tx.runners.beat(
                TaskRunner(
                    runner_id=runner_id,
                    worker_group=worker_group,
                    hostname=hostname,
                    heartbeat_at=self.clock.now(),
                )
            )
        return stored.terminate
