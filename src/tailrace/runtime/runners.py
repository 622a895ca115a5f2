"""Everything one process runs for the service: the scheduler loop, embedded task runners, and
the local pools of `runsOn` resources.

A resource instance (Ec2Resource, EmrCluster) is itself a task on the '@resources' queue: the
process that claims it starts a pool of task runners for that instance's own queue, keeps the
claim alive while the pool lives, and stops the pool when the service shuts the resource down
(every activity on it ended) or times it out (terminateAfter).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tailrace.engines.registry import DEFAULT_ENGINE, EngineRegistry
from tailrace.events.model import (
    DefinitionPut,
    InstanceStatusChanged,
    PipelineActivated,
    PipelineCreated,
    PipelineDeleted,
    PipelineStateChanged,
)
from tailrace.runtime.activation import RESOURCE_QUEUE, SERVICE_QUEUE, resource_queue, worker_group_queue
from tailrace.runtime.dbaccess import DatabaseAccess
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.runtime.tasks import Task
from tailrace.runtime.worker import (
    Doorbell,
    Executor,
    Heartbeat,
    Isolation,
    Worker,
    WorkerOptions,
    default_executor,
)
from tailrace.state import TERMINAL, StoredEvent, TaskNotFound
from tailrace.storage import Storage

log = logging.getLogger("tailrace.runners")
TERMINAL_NAMES = frozenset(s.value for s in TERMINAL)
PIPELINE_EVENTS = (PipelineCreated, PipelineDeleted, DefinitionPut, PipelineActivated, PipelineStateChanged)


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    scheduler: bool = True
    workers: int = 4
    """Task runner threads for worker groups and the service's own tasks."""
    worker_groups: Sequence[str] = ("*",)
    """Worker groups the embedded runners serve; '*' serves every group."""
    service_tasks: bool = True
    """Run the checks the service runs itself (preconditions that name no runner)."""
    resources: bool = True
    """Host local pools for activities that run on a resource (runsOn)."""
    pool_size: int = 2
    """Task runner threads per resource instance (Task Runner's default --tasks)."""
    poll_interval: float = 1.0
    grace: float = 10.0
    hostname: str = field(default_factory=socket.gethostname)
    name: str = "tailrace"


def queues_for(worker_groups: Sequence[str], *, service_tasks: bool) -> list[str]:
    out = ["wg:*" if g == "*" else worker_group_queue(g) for g in worker_groups]
    if service_tasks:
        out.append(SERVICE_QUEUE)
    return out


class ServiceProcess:
    def __init__(
        self,
        *,
        service: PipelineService,
        storage: Storage,
        home: Path,
        config: RunnerConfig,
        engines: EngineRegistry | None = None,
        hive_engine: str = DEFAULT_ENGINE,
        executor: Executor = default_executor,
        echo: Callable[[str], None] | None = None,
        isolation: Isolation | None = None,
        databases: DatabaseAccess | None = None,
    ) -> None:
        self.isolation = isolation
        self.databases = databases
        self.service = service
        self.storage = storage
        self.home = home
        self.config = config
        self.engines = engines
        self.hive_engine = hive_engine
        self.executor = executor
        self.echo = echo
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.doorbell = Doorbell()
        self.threads: list[threading.Thread] = []
        self.workers: list[Worker] = []
        self.scheduler: Scheduler | None = None
        self._ids = itertools.count(1)
        self._unsubscribe: Callable[[], None] | None = None
        self._pools: list[threading.Thread] = []
        self._pool_ends: dict[tuple[str, str], threading.Event] = {}

    def _worker(self, queues: Sequence[str], label: str) -> Worker:
        options = WorkerOptions(
            runner_id=f"{self.runner_id}/{label}",
            hostname=self.config.hostname,
            poll_interval=self.config.poll_interval,
            grace=self.config.grace,
        )
        return Worker(
            service=self.service,
            queues=queues,
            storage=self.storage,
            home=self.home,
            options=options,
            engines=self.engines,
            hive_engine=self.hive_engine,
            executor=self.executor,
            doorbell=self.doorbell,
            echo=self.echo,
            isolation=self.isolation,
            databases=self.databases,
        )

    def _spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _on_events(self, records: Sequence[StoredEvent]) -> None:
        events = [r.event for r in records]
        # The scheduler wakes for what changes its plan (activations, deactivations); the rest
        # moves on in the transactions that cause it, and timers are found by its own polling.
        if any(isinstance(e, PIPELINE_EVENTS) for e in events):
            self.wake.set()
        ring = False
        for e in events:
            if not isinstance(e, InstanceStatusChanged):
                continue
            ring = ring or e.new == "WAITING_FOR_RUNNER"
            # A resource this process hosts has been shut down or timed out: stop its pool now
            # rather than at the next heartbeat.
            ended = self._pool_ends.get((e.pipeline_id or "", e.object_id))
            if ended is not None and e.new in TERMINAL_NAMES:
                ended.set()
        if ring:
            self.doorbell.ring()

    def start(self) -> None:
        self._unsubscribe = self.service.store.subscribe(self._on_events)
        if self.config.scheduler:
            self.scheduler = Scheduler(
                store=self.service.store, transitions=self.service.transitions, clock=self.service.clock
            )
            sched = self.scheduler
            self.threads.append(
                self._spawn(
                    lambda: sched.run(self.stop_event, self.wake, max_sleep=self.config.poll_interval),
                    "scheduler",
                )
            )
        queues = queues_for(self.config.worker_groups, service_tasks=self.config.service_tasks)
        for n in range(self.config.workers):
            worker = self._worker(queues, f"worker-{n + 1}")
            self.workers.append(worker)
            self.threads.append(
                self._spawn(functools.partial(worker.run, self.stop_event), f"worker-{n + 1}")
            )
        if self.config.resources:
            host = self._worker([RESOURCE_QUEUE], "resources")
            self.threads.append(self._spawn(lambda: self._host_resources(host), "resources"))
        if self.config.workers or self.config.resources:
            self.threads.append(self._spawn(self._report_alive, "task runner heartbeat"))

    @property
    def runner_id(self) -> str:
        return f"{self.config.name}@{self.config.hostname}:{os.getpid()}"

    def _report_alive(self) -> None:
        """ReportTaskRunnerHeartbeat for this process every minute (Task Runner: every 15 min);
        stops the process when the service answers terminate."""
        groups = ",".join(self.config.worker_groups) or None
        while True:
            try:
                if self.service.report_task_runner_heartbeat(
                    self.runner_id, worker_group=groups, hostname=self.config.hostname
                ):
                    log.warning("%s: the service asked this task runner to terminate", self.runner_id)
                    self.stop_event.set()
                    self.doorbell.ring()
            except Exception:
                log.exception("task runner heartbeat failed")
            if self.stop_event.wait(60):
                return

    def _host_resources(self, host: Worker) -> None:
        while not self.stop_event.is_set():
            seen = self.doorbell.mark()
            try:
                task = self.service.claim(
                    [RESOURCE_QUEUE], runner_id=host.options.runner_id, hostname=host.options.hostname
                )
            except Exception:
                log.exception("claiming a resource failed")
                task = None
            if task is None:
                self.doorbell.wait(seen, self.config.poll_interval)
                continue
            self._pools.append(
                self._spawn(functools.partial(self._run_pool, task), f"pool {task.instance.id}")
            )

    def _run_pool(self, task: Task) -> None:
        """Run a local pool for one resource instance until the service ends the resource."""
        ended = threading.Event()
        key = (task.pipeline_id, task.instance.id)
        self._pool_ends[key] = ended
        heartbeat = Heartbeat(self.service, task, ended, stop=self.stop_event, grace=self.config.grace)
        pool_stop = threading.Event()
        queue = resource_queue(task.pipeline_id, task.instance.id)
        label = task.instance.id.lstrip("@")
        workers = [self._worker([queue], f"{label}/{n + 1}") for n in range(self.config.pool_size)]
        threads = [
            self._spawn(functools.partial(w.run, pool_stop), f"{label}/{n + 1}")
            for n, w in enumerate(workers)
        ]
        self._note(f"{task.pipeline_id} {task.instance.id}: local pool of {len(workers)} runner(s) started")
        heartbeat.start()
        self.doorbell.ring()
        # When the process stops, the pool's runners get the same grace as every other runner
        # (from now, not after the pool's own heartbeat has waited a grace first).
        while not ended.wait(0.2) and not self.stop_event.is_set():
            pass
        pool_stop.set()
        self.doorbell.ring()
        for thread in threads:
            thread.join()
        heartbeat.stop()
        self._pool_ends.pop(key, None)
        self._note(f"{task.pipeline_id} {task.instance.id}: local pool stopped")
        if heartbeat.lost:
            return
        try:
            # After a shutdown or timeout the service has ended the attempt and ignores this;
            # when this process is stopping it gives the resource back for another host.
            self.service.set_task_status(task.task_id, "CANCELED", error_message="the resource host stopped")
        except TaskNotFound:
            pass

    def _note(self, line: str) -> None:
        log.info("%s", line)

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; running attempts get `grace` seconds, then are interrupted (queries,
        process groups) and given back. Returns within `timeout` (default: grace + 5 s): an
        attempt that has not ended by then is given back here, and its thread left behind."""
        began = time.monotonic()
        self.stop_event.set()
        self.wake.set()
        self.doorbell.ring()
        deadline = began + (timeout if timeout is not None else self.config.grace + 5.0)
        for thread in [*self.threads, *self._pools]:
            thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = [w.current for w in self.workers if w.current is not None]
        for task in stuck:
            log.warning("%s did not stop within the grace period; giving it back", task.attempt_id)
            try:
                self.service.set_task_status(
                    task.task_id, "CANCELED", error_message="the task runner stopped (grace period over)"
                )
            except Exception:  # already ended, or the store is away: its lease will run out
                log.exception("could not give %s back", task.attempt_id)
        if self._unsubscribe is not None:
            self._unsubscribe()

    @property
    def running(self) -> list[str]:
        return [w.current.attempt_id for w in self.workers if w.current is not None]
