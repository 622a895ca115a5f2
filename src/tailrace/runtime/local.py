"""`tailrace run`: one pass of a definition over its due periods, by the service's own machinery.

The run is the real scheduler, transitions and task runner over a throwaway SQLite store under
the data directory, on a fast-forward clock: whenever nothing is runnable the clock jumps to the
store's next wakeup (a retry delay, a timer), so a run takes the time of its work, not of its
schedule. Outputs and attempt logs land where the service writes them.

What differs from `tailrace up` is only what a one-shot run must decide for itself, applied to the
definition (so the service, given the same definition, behaves the same):
- no period after `--until` (or now) is planned;
- objects that set no `maximumRetries` get 0, no `failureAndRerunMode` get cascade, and
  preconditions no `preconditionTimeout` get 0 (checked once): a run never waits forever.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tailrace.clock import Clock, FastForwardClock, SystemClock, format_dp, utc
from tailrace.definition import Category, DefinitionError, PipelineDefinition, resolve
from tailrace.engines.registry import DEFAULT_ENGINE, EngineRegistry
from tailrace.limits import Limits
from tailrace.plan import schedule_type_of
from tailrace.runtime.activation import RESOURCE_QUEUE, main_anchor, resource_queue
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.dbaccess import DatabaseAccess
from tailrace.runtime.runners import queues_for
from tailrace.runtime.scheduler import Scheduler
from tailrace.runtime.service import PipelineService
from tailrace.runtime.tasks import Task
from tailrace.runtime.transitions import RuntimeConfig
from tailrace.runtime.worker import Executor, Worker, WorkerOptions, default_executor
from tailrace.state import Instance, PipelineState, StateStore, Status, TaskNotFound
from tailrace.storage import Storage

FAILED_STATES = frozenset({"FAILED", "CASCADE_FAILED", "CANCELED", "TIMEDOUT"})
ONE_SHOT_DEFAULTS: Mapping[Category, Mapping[str, str]] = {
    Category.ACTIVITY: {"maximumRetries": "0", "failureAndRerunMode": "cascade"},
    Category.DATA_NODE: {"maximumRetries": "0", "failureAndRerunMode": "cascade"},
    Category.PRECONDITION: {
        "maximumRetries": "0",
        "failureAndRerunMode": "cascade",
        "preconditionTimeout": "1 minutes",
    },
}
ONE_SHOT_LIMITS = Limits(
    instances_per_activation=10**9, instances_per_hour=10**9, active_pipelines=10**9, running_attempts=10**9
)
"""A run is one owner's own backfill on its own store: the per-owner bounds of a shared service
do not apply (plan's MAX_WINDOWS still does); the definition size limits do."""
MAX_STEPS = 1_000_000
"""A safety net: ticks of one run (each tick runs or jumps; a real run takes a few per attempt)."""


@dataclass(kw_only=True)
class InstanceResult:
    instance: Instance
    status: str
    attempts: int = 0
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    log_uri: str | None = None


@dataclass(kw_only=True)
class RunReport:
    pipeline_id: str
    until: datetime
    results: list[InstanceResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(r.status in FAILED_STATES for r in self.results)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            for key, value in r.summary.items():
                if isinstance(value, int):
                    out[key] = out.get(key, 0) + value
        return out


def local_pipeline_id(source: str | None) -> str:
    """A stable id for one-shot runs of the same file: df-LOCAL + 12 hex digits."""
    digest = hashlib.sha1((source or "<definition>").encode()).hexdigest()[:12].upper()
    return f"df-LOCAL{digest}"


def one_shot_definition(defn: PipelineDefinition) -> PipelineDefinition:
    """The definition with the one-shot defaults written into the objects that leave them unset."""
    resolved = resolve(defn)
    objects = []
    for obj in defn.objects:
        r = resolved.objects.get(obj.id)
        defaults = ONE_SHOT_DEFAULTS.get(r.category) if r is not None and r.category else None
        missing = {k: v for k, v in (defaults or {}).items() if r is not None and not r.has(k)}
        objects.append(dataclasses.replace(obj, fields={**obj.fields, **missing}) if missing else obj)
    return dataclasses.replace(defn, objects=tuple(objects))


def _lookahead(defn: PipelineDefinition, at: datetime, *, until_given: bool) -> timedelta:
    """Periods due by `at`: a timeseries period ending at `at` is due; a cron period starting at
    --until is not (it belongs to the next run), while without --until a period starting now
    runs, as on activation (FIRST_ACTIVATION_DATE_TIME schedules)."""
    from tailrace.plan import Planner

    if not until_given:
        return timedelta(0)
    resolved = resolve(defn)
    try:
        anchor = main_anchor(resolved, Planner(resolved, activated_at=at))
    except Exception:  # an unplannable definition is refused by activation with the real message
        return timedelta(0)
    cron = anchor is not None and schedule_type_of(anchor) == "cron"
    return -timedelta(microseconds=1) if cron else timedelta(0)


class LocalRunner:
    def __init__(
        self,
        *,
        storage: Storage,
        home: Path,
        engines: EngineRegistry | None = None,
        hive_engine: str = DEFAULT_ENGINE,
        clock: Clock | None = None,
        echo: Callable[[str], None] = lambda line: None,
        progress: Callable[[str], None] = lambda line: None,
        tally: Callable[[int, int], None] = lambda ended, planned: None,
        store_factory: Callable[[Path, Clock], StateStore] | None = None,
        executor: Executor = default_executor,
        databases: DatabaseAccess | None = None,
    ) -> None:
        self.databases = databases
        self.storage = storage
        self.home = home.resolve()
        self.engines = engines
        self.hive_engine = hive_engine
        self.clock = clock or SystemClock()
        self.echo = echo
        self.progress = progress
        self.tally = tally
        """Told (instances ended, instances planned) as they end: for a counter with an ETA."""
        self.store_factory = store_factory or _sqlite_store
        self.executor = executor

    def run(
        self,
        defn: PipelineDefinition,
        *,
        values: Mapping[str, Any] | None = None,
        until: datetime | None = None,
        pipeline_id: str | None = None,
    ) -> RunReport:
        now = self.clock.now()
        limit = min(utc(until), now) if until is not None else now
        until_given = until is not None and utc(until) <= now
        pid = pipeline_id or local_pipeline_id(defn.source)
        clock = FastForwardClock(limit)
        with self._store(clock) as store:
            return _Run(self, store, clock, pid, limit, until_given=until_given).run(defn, values)

    @contextmanager
    def _store(self, clock: Clock) -> Iterator[StateStore]:
        work = self.home / "tmp" / f"run-{uuid.uuid4().hex[:12]}"
        work.mkdir(parents=True, exist_ok=True)
        store = self.store_factory(work, clock)
        try:
            yield store
        finally:
            store.close()
            engine = getattr(store, "engine", None)
            if engine is not None:
                engine.dispose()
            shutil.rmtree(work, ignore_errors=True)


def _sqlite_store(work: Path, clock: Clock) -> StateStore:
    from sqlalchemy import event

    from tailrace.state import SqlStateStore, create_engine

    engine = create_engine(f"sqlite:///{work / 'state.db'}")

    def no_sync(dbapi_connection: Any, _record: Any) -> None:
        # The store is thrown away when the run ends: durability buys nothing, fsyncs cost time.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    event.listen(engine, "connect", no_sync)
    return SqlStateStore(engine, clock=clock)


class _Run:
    """One run: the scheduler ticks, one in-process task runner drains what is ready, and the
    clock jumps to the next wakeup when nothing is; hosted resources keep their claims alive."""

    def __init__(
        self,
        runner: LocalRunner,
        store: StateStore,
        clock: FastForwardClock,
        pid: str,
        limit: datetime,
        *,
        until_given: bool,
    ) -> None:
        self.runner = runner
        self.store = store
        self.clock = clock
        self.pid = pid
        self.limit = limit
        self.until_given = until_given
        self.summaries: dict[str, dict[str, Any]] = {}
        self.resources: list[Task] = []
        self.reported: set[str] = set()
        self.planned = 0

    def run(self, defn: PipelineDefinition, values: Mapping[str, Any] | None) -> RunReport:
        r = self.runner
        defn = one_shot_definition(defn)
        config = RuntimeConfig(lookahead=_lookahead(defn, self.limit, until_given=self.until_given))
        service = PipelineService(
            store=self.store,
            home=r.home,
            clock=self.clock,
            config=config,
            storage=r.storage,
            limits=ONE_SHOT_LIMITS,
        )
        service.create_pipeline("tailrace run", self.pid, pipeline_id=self.pid)
        report = service.put_definition(self.pid, defn)
        if report.errored:
            raise DefinitionError(report)
        service.activate(self.pid, parameter_values=dict(values) if values else None)
        out = RunReport(pipeline_id=self.pid, until=self.limit, warnings=[str(w) for w in report.warnings])
        scheduler = Scheduler(store=self.store, transitions=service.transitions, clock=self.clock)
        worker = Worker(
            service=service,
            queues=queues_for(("*",), service_tasks=True),
            storage=r.storage,
            home=r.home,
            options=WorkerOptions(runner_id="tailrace-run", hostname="localhost"),
            engines=r.engines,
            hive_engine=r.hive_engine,
            executor=self._executor,
            databases=r.databases,
        )
        for _ in range(MAX_STEPS):  # a long backfill is created over several bounded ticks
            if not scheduler.tick().backlog:
                break
        self._close_schedule()
        planned = self._instances()
        if not planned:
            r.progress(f"nothing to run: no period is due before {format_dp(self.limit)}")
            return out
        r.progress(f"planned {len(planned)} instances up to {format_dp(self.limit)} (pipeline {self.pid})")
        self.planned = len(planned)
        r.tally(0, self.planned)
        with _forward_log("tailrace.service", r.progress):
            self._drive(service, scheduler, worker)
        attempts = self._attempts()
        for inst in sorted(self._instances(), key=lambda i: (i.scheduled_start, i.run_at, i.id)):
            tries = attempts.get(inst.id, [])
            out.results.append(
                InstanceResult(
                    instance=inst,
                    status=inst.status.value,
                    attempts=len(tries),
                    error=inst.error_message if inst.status.value in FAILED_STATES else None,
                    summary=self.summaries.get(inst.id, {}),
                    log_uri=tries[-1] if tries else None,
                )
            )
        return out

    def _drive(self, service: PipelineService, scheduler: Scheduler, worker: Worker) -> None:
        stalled = 0
        for _ in range(MAX_STEPS):
            scheduler.tick()
            ran = self._drain(service, worker)
            self._echo_ended()
            if ran:
                stalled = 0
                continue
            instances = self._instances()
            if all(i.terminal for i in instances):
                return
            wake = next_wakeup(scheduler, instances)
            if wake is None:
                return  # what is left waits on something no time will bring (a failed input)
            if wake <= self.clock.now():
                stalled += 1
                if stalled > 3:  # due yet nothing moves: nudge rather than spin
                    wake = self.clock.now() + timedelta(seconds=1)
            else:
                stalled = 0
            self.clock.jump_to(wake)
            for task in self.resources:  # a host keeps its resources' claims alive while time passes
                try:
                    service.report_task_progress(task.task_id)
                except TaskNotFound:
                    pass
        raise RuntimeError(f"tailrace run did not settle within {MAX_STEPS} steps")

    def _drain(self, service: PipelineService, worker: Worker) -> int:
        ran = 0
        while True:
            task = service.claim([RESOURCE_QUEUE], runner_id="tailrace-run/resources", hostname="localhost")
            if task is not None:
                # A resource is a pool for its activities: the in-process runner serves its queue.
                self.resources.append(task)
                worker.queues.append(resource_queue(task.pipeline_id, task.instance.id))
                ran += 1
                continue
            task = service.claim(worker.queues, runner_id="tailrace-run", hostname="localhost")
            if task is None:
                return ran
            self.runner.progress(f"running {task.instance.id} (attempt {task.attempt})")
            worker.execute(task, threading.Event())  # never set: attempts end on their own
            ran += 1
            self._echo_ended()

    def _executor(self, ctx: AttemptContext) -> AttemptOutcome:
        outcome = self.runner.executor(ctx)
        self.summaries[ctx.instance.id] = dict(outcome.summary)
        return outcome

    def _close_schedule(self) -> None:
        """Every due period exists after the first tick: no later one is created."""
        with self.store.transaction() as tx:
            pipeline = tx.pipelines.lock(self.pid)
            if pipeline is not None and pipeline.state is PipelineState.SCHEDULED:
                tx.pipelines.update(self.pid, next_window_at=None)

    def _instances(self) -> list[Instance]:
        out: list[Instance] = []
        with self.store.transaction(readonly=True) as tx:
            after = None
            while page := tx.instances.page(self.pid, after=after, limit=500):
                out += page
                after = page[-1].id
        return out

    def _attempts(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.store.transaction(readonly=True) as tx:
            for inst in self._instances():
                out[inst.id] = [
                    a.log_location for a in tx.attempts.for_instance(self.pid, inst.id) if a.log_location
                ]
        return out

    def _echo_ended(self) -> None:
        ended = [i for i in self._instances() if i.terminal and i.id not in self.reported]
        for inst in _dependency_order(ended):
            self.reported.add(inst.id)
            line = f"{inst.id}  {inst.status.value}"
            if inst.status.value in FAILED_STATES and inst.error_message:
                line += f"  ({inst.error_message})"
            self.runner.echo(line)
        if ended:
            self.runner.tally(len(self.reported), max(self.planned, len(self.reported)))


def next_wakeup(scheduler: Scheduler, instances: list[Instance]) -> datetime | None:
    """When something next can happen: the scheduler's timers, or a retry delay ending (runners
    find those by polling, so the store's wakeup does not list them)."""
    times = [
        i.ready_at for i in instances if i.status is Status.WAITING_FOR_RUNNER and i.ready_at is not None
    ]
    wake = scheduler.next_wakeup()
    if wake is not None:
        times.append(wake)
    return min(times) if times else None


def _dependency_order(batch: list[Instance]) -> list[Instance]:
    """Instances that ended together (a cascade), each after what it waits on."""
    pending = sorted(batch, key=lambda i: (i.scheduled_start, i.run_at, i.id))
    ids = {i.id for i in pending}
    out: list[Instance] = []
    done: set[str] = set()
    while pending:
        ready = [i for i in pending if not ({*i.depends_on, *i.preconditions} & ids) - done]
        for inst in ready or pending[:1]:  # a cycle cannot happen; never loop on one regardless
            out.append(inst)
            done.add(inst.id)
        pending = [i for i in pending if i.id not in done]
    return out


@contextmanager
def _forward_log(name: str, progress: Callable[[str], None]) -> Iterator[None]:
    """The service's own log lines (actions fired) go to the run's progress output."""

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            progress(record.getMessage())

    logger = logging.getLogger(name)
    handler = Forward(level=logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
