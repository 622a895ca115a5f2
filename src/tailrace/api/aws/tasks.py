"""PollForTask in the API's shape: the claimed task as a taskObject, the attempt with its
component's fields evaluated for this instance, plus the instances it reads and writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tailrace.api.aws.objects import attempt_runtime, evaluated, instance_runtime
from tailrace.events.model import InstanceStatusChanged
from tailrace.runtime.reads import active_definition, evaluated_fields, get_pipeline, instance_scope
from tailrace.runtime.worker import Doorbell
from tailrace.state import Status

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService
    from tailrace.runtime.tasks import Task
    from tailrace.state import StoredEvent


def poll_for_task(
    service: PipelineService,
    worker_group: str,
    *,
    hostname: str | None = None,
    runner_id: str | None = None,
    owner: str | None = None,
) -> dict[str, Any] | None:
    """PollForTask: the next task of the worker group as a taskObject, or None. With `owner`
    (the API caller's), only that owner's pipelines hand out tasks."""
    task = service.poll_for_task(worker_group, hostname=hostname, runner_id=runner_id, owner=owner)
    return task_object(service, task) if task is not None else None


def task_object(service: PipelineService, task: Task) -> dict[str, Any]:
    """PollForTask's taskObject: the attempt with its component's fields evaluated for this
    instance, plus the instances it reads and writes."""
    inst = task.instance
    with service.store.transaction(readonly=True) as tx:
        pipeline = get_pipeline(tx, task.pipeline_id)
        attempt = tx.attempts.find(task.pipeline_id, task.attempt_id)
        active = active_definition(service.definitions, tx, pipeline, inst.definition_version)
        related = tx.instances.find_many(
            task.pipeline_id, (*(inst.spec.get("inputs") or ()), *(inst.spec.get("outputs") or ()))
        )
    objects: dict[str, Any] = {}
    scope = instance_scope(active, inst, attempt)
    fields = evaluated(evaluated_fields(active, inst.component_id, scope))
    fields += attempt_runtime(attempt, inst) if attempt else []
    fields += [f for f in instance_runtime(inst) if f["key"] in ("input", "output", "@resource")]
    objects[task.attempt_id] = {"id": task.attempt_id, "name": task.attempt_id, "fields": fields}
    for rid, other in related.items():
        rscope = instance_scope(active, other)
        objects[rid] = {
            "id": rid,
            "name": rid,
            "fields": evaluated(evaluated_fields(active, other.component_id, rscope))
            + instance_runtime(other),
        }
    return {
        "taskId": task.task_id,
        "pipelineId": task.pipeline_id,
        "attemptId": task.attempt_id,
        "objects": objects,
    }


class LongPoll:
    """PollForTask as Task Runner expects it: the call waits up to `wait` seconds and answers as
    soon as a task of its worker group is ready.

    The store's commit hook rings a doorbell when this process makes an instance
    WAITING_FOR_RUNNER, so a waiting poll claims it at once; commits made by other processes
    (a separate scheduler) are found by re-checking every `recheck` seconds.
    """

    def __init__(
        self, service: PipelineService, *, wait: float = 90.0, recheck: float = 5.0, per_owner: int = 4
    ) -> None:
        self.service = service
        self.wait = wait
        self.recheck = recheck
        self.per_owner = per_owner
        """Polls one owner may have waiting at once; more answer at once (the poll threads are
        shared, so one key holder cannot hold them all)."""
        self.bell = Doorbell()
        self.closed = False
        self._waiting = 0
        self._by_owner: dict[str, int] = {}
        self._lock = threading.Lock()
        self._unsubscribe = service.store.subscribe(self._on_commit) if wait > 0 else None

    def _on_commit(self, records: Sequence[StoredEvent]) -> None:
        for r in records:
            e = r.event
            if isinstance(e, InstanceStatusChanged) and e.new == Status.WAITING_FOR_RUNNER.value:
                self.bell.ring()
                return

    @property
    def waiting(self) -> int:
        """Polls waiting now (for tests and metrics)."""
        return self._waiting

    def poll(
        self, worker_group: str, *, hostname: str | None = None, owner: str | None = None
    ) -> dict[str, Any] | None:
        who = owner or ""
        with self._lock:
            waits = self._by_owner.get(who, 0) < self.per_owner
            if waits:
                self._by_owner[who] = self._by_owner.get(who, 0) + 1
                self._waiting += 1
        if not waits:
            return poll_for_task(self.service, worker_group, hostname=hostname, owner=owner)
        deadline = time.monotonic() + self.wait
        try:
            while True:
                seen = self.bell.mark()
                task = poll_for_task(self.service, worker_group, hostname=hostname, owner=owner)
                left = deadline - time.monotonic()
                if task is not None or left <= 0 or self.closed:
                    return task
                self.bell.wait(seen, min(left, self.recheck))
        finally:
            with self._lock:
                self._waiting -= 1
                self._by_owner[who] -= 1
                if not self._by_owner[who]:
                    del self._by_owner[who]

    def close(self) -> None:
        """Answer waiting polls now (server shutdown) and stop listening."""
        self.closed = True
        self.bell.ring()
        if self._unsubscribe is not None:
            self._unsubscribe()
