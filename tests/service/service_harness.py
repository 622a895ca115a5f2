"""A harness that plays scheduler loop and task runner by hand, on a frozen clock."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tailrace.clock import FrozenClock
from tailrace.definition import from_file_dict
from tailrace.limits import Limits
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.runtime.tasks import Task
from tailrace.runtime.transitions import RuntimeConfig
from tailrace.state import StateStore, Status
from tailrace.storage import Storage

T0 = datetime(2024, 3, 3, 12, 0, tzinfo=UTC)
ALL = ["wg:*", "@service", "@resources"]


def definition(
    *objects: dict[str, Any],
    default: dict[str, Any] | None = None,
    start="2024-03-01T00:00:00",
    period="1 day",
    **schedule: str,
) -> dict[str, Any]:
    base = {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Every"}, "workerGroup": "wg"}
    base.update(default or {})
    sched = {"id": "Every", "type": "Schedule", "period": period, "startDateTime": start, **schedule}
    return {"objects": [base, sched, *copy.deepcopy(list(objects))]}


def shell(oid: str, **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "ShellCommandActivity", "command": f"echo {oid}", **fields}


class Harness:
    def __init__(
        self,
        *,
        store: StateStore,
        home: Path,
        clock: FrozenClock,
        limits: Limits | None = None,
        **config: Any,
    ) -> None:
        self.store = store
        self.clock = clock
        self.home = home
        # Ticks and steps bounded by counts only (not by time): what one tick does is deterministic.
        config.setdefault("tick_seconds", 3600.0)
        config.setdefault("step_seconds", 3600.0)
        self.config = RuntimeConfig(**config)
        self.storage = Storage(home=home)
        self.service = PipelineService(
            store=store, home=home, clock=clock, config=self.config, storage=self.storage, limits=limits
        )
        self.scheduler = Scheduler(store=store, transitions=self.service.transitions, clock=clock)
        self.hosted: list[str] = []
        """Queues of the resources this harness has claimed: it plays their local pools too."""

    def pipeline(
        self, file_form: dict[str, Any], *, name="p", activate=True, owner: str = "", **activation: Any
    ) -> str:
        pid = self.service.create_pipeline(name, f"u-{name}", owner=owner)
        report = self.service.put_definition(pid, from_file_dict(file_form))
        assert not report.errored, report.to_aws()
        if activate:
            self.service.activate(pid, **activation)
        return pid

    def tick(self):
        return self.scheduler.tick()

    def advance(self, delta: timedelta | float):
        self.clock.advance(delta)
        return self.tick()

    def statuses(self, pid: str) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.store.transaction(readonly=True) as tx:
            after = None
            while page := tx.instances.page(pid, after=after, limit=500):
                out.update({i.id: i.status.value for i in page})
                after = page[-1].id
        return out

    def instance(self, pid: str, iid: str):
        with self.store.transaction(readonly=True) as tx:
            return tx.instances.get(pid, iid)

    def attempts(self, pid: str, iid: str):
        with self.store.transaction(readonly=True) as tx:
            return tx.attempts.for_instance(pid, iid)

    def events(self, kind: type | None = None, pid: str | None = None):
        """The typed events committed (of one class, of one pipeline), in commit order."""
        events = [r.event for r in self.store.events_after(0, pipeline_id=pid, limit=100_000)]
        return [e for e in events if kind is None or isinstance(e, kind)]

    def claim(self, queues=ALL, runner="r1") -> Task | None:
        return self.service.claim(queues, runner_id=runner, hostname="host-1")

    def drain(
        self, outcome: Callable[[Task], str] = lambda t: "FINISHED", *, queues=ALL, limit: int = 10_000
    ) -> list[str]:
        """Claim and complete tasks until none is ready now; returns the instance ids run."""
        ran = []
        for _ in range(limit):
            task = self.claim([*queues, *self.hosted])
            if task is None:
                return ran
            ran.append(task.instance.id)
            if task.instance.category == "RESOURCE":
                self.hosted.append(f"res:{task.pipeline_id}/{task.instance.id}")
                continue  # the pool lives until the service shuts the resource down
            result = outcome(task)
            if result != "KEEP":
                self.service.set_task_status(
                    task.task_id, result, error_message=None if result == "FINISHED" else "boom"
                )
        raise AssertionError("drain did not end")

    def run_until_quiet(
        self, outcome: Callable[[Task], str] = lambda t: "FINISHED", *, queues=ALL
    ) -> list[str]:
        ran = []
        while True:
            self.tick()
            batch = self.drain(outcome, queues=queues)
            if not batch:
                return ran
            ran += batch


def of_status(statuses: dict[str, str], status: Status | str) -> list[str]:
    return sorted(i for i, s in statuses.items() if s == str(status))
