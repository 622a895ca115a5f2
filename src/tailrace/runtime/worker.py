"""A task runner: poll for a task, run the attempt, report progress while it runs, report how it
ended. Threads inside `tailrace up`, or `tailrace worker` processes on any host sharing the
database.

While an attempt runs a heartbeat thread extends its lease (ReportTaskProgress). If the service
answers `canceled` the attempt is asked to stop; if it answers that the task is gone (the lease
was lost, the pipeline deleted) the runner drops the attempt without reporting, since the
service has already handed the work to someone else.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailrace.clock import SystemClock
from tailrace.engines.registry import DEFAULT_ENGINE, EngineRegistry
from tailrace.errors import TailraceError
from tailrace.ids import path_segment
from tailrace.runtime.activation import ActiveDefinition, planned_from_spec
from tailrace.runtime.context import AttemptContext, AttemptOutcome, CancelSignal
from tailrace.runtime.dbaccess import DatabaseAccess
from tailrace.runtime.logs import closing_suffix, log_storage
from tailrace.runtime.logtext import plain
from tailrace.runtime.service import PipelineService
from tailrace.runtime.tasks import Task
from tailrace.state import TaskNotFound
from tailrace.storage import DEFAULT_OWNER, Storage

TAIL_BYTES = 256 * 1024
"""How much of a log's end is read back to see whether it already holds the stack trace."""

log = logging.getLogger("tailrace.worker")

Executor = Callable[[AttemptContext], AttemptOutcome]


def default_executor(ctx: AttemptContext) -> AttemptOutcome:
    from tailrace.runtime.activities import execute_attempt

    return execute_attempt(ctx)


class Doorbell:
    """Wakes idle runners when work may have arrived (no wake-up is lost between checks)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rings = 0

    def ring(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return self._rings

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self._rings == seen:
                self._cond.wait(timeout)


def running_log_path(home: Path, pipeline_id: str, attempt_id: str) -> Path:
    """Where a task runner on this host writes an attempt's log while it runs (uploaded to the
    attempt's log location when it ends); `tailrace logs --follow` reads it."""
    work = _work_dir(home, pipeline_id, attempt_id)
    return work.with_name(work.name + ".log")  # not with_suffix: ids may hold dots


def _work_dir(home: Path, pipeline_id: str, attempt_id: str) -> Path:
    return home / "work" / pipeline_id / path_segment(attempt_id.lstrip("@").replace("=", ""))


class FileLog:
    """The attempt's log: appended to a local file as it is written (thread-safe)."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.echo = echo

    def write(self, text: str) -> int:
        text = plain(text)
        with self._lock:
            self._file.write(text)
            self._file.flush()
        if self.echo is not None:
            self.echo(text)
        return len(text)

    def close(self, suffix: Callable[[str], str] | None = None) -> Path:
        """Close the file (after appending `suffix(tail)`, where tail is the log's last part)."""
        with self._lock:
            if suffix is not None:
                self._file.write(suffix(self._tail()))
            self._file.close()
        return self.path

    def _tail(self, size: int = TAIL_BYTES) -> str:
        self._file.flush()
        with self.path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - size))
            return fh.read().decode("utf-8", "replace")


@dataclass(kw_only=True)
class WorkerOptions:
    runner_id: str
    hostname: str = field(default_factory=socket.gethostname)
    poll_interval: float = 1.0
    """Seconds between polls when idle (a doorbell cuts the wait short in-process)."""
    grace: float = 10.0
    """On stop, how long a running attempt may go on before it is canceled and given back."""


@dataclass(frozen=True, kw_only=True)
class Isolation:
    """Owners kept apart (the service): each attempt gets its owner's view of the store and
    metastore, and shell-like steps run as the owner's OS user (see runtime/sandbox.py)."""

    execution: Any
    """tailrace.config.ExecutionSettings"""


class Worker:
    def __init__(
        self,
        *,
        service: PipelineService,
        queues: Collection[str],
        storage: Storage,
        home: Path,
        options: WorkerOptions,
        engines: EngineRegistry | None = None,
        hive_engine: str = DEFAULT_ENGINE,
        executor: Executor = default_executor,
        doorbell: Doorbell | None = None,
        echo: Callable[[str], None] | None = None,
        isolation: Isolation | None = None,
        databases: DatabaseAccess | None = None,
    ) -> None:
        self.isolation = isolation
        self.databases = databases or DatabaseAccess()
        self.service = service
        self.queues = list(queues)
        self.storage = storage
        self.home = home
        self.options = options
        self.engines = engines
        self.hive_engine = hive_engine
        self.executor = executor
        self.doorbell = doorbell or Doorbell()
        self.echo = echo
        self.ran = 0
        self.current: Task | None = None

    def run(self, stop: threading.Event) -> None:
        """Poll and run until `stop` is set (a running attempt gets `grace` seconds to end)."""
        while not stop.is_set():
            seen = self.doorbell.mark()
            try:
                did = self.run_once(stop)
            except Exception:  # a database hiccup must not end the runner
                log.exception("%s: poll failed", self.options.runner_id)
                did = False
            if not did:
                self.doorbell.wait(seen, self.options.poll_interval)
                if stop.is_set():
                    return

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """Claim one task and run it; False when there was none."""
        task = self.service.claim(
            self.queues, runner_id=self.options.runner_id, hostname=self.options.hostname
        )
        if task is None:
            return False
        self.current = task
        try:
            self.execute(task, stop or threading.Event())
        finally:
            self.current = None
            self.ran += 1
        return True

    def _active(self, task: Task) -> ActiveDefinition:
        def load(version: int) -> Any:  # only when the definition is not cached yet
            with self.service.store.transaction(readonly=True) as tx:
                found = tx.definitions.find(task.pipeline_id, version)
            if found is None:
                raise TailraceError(f"definition version {version} of {task.pipeline_id} is missing")
            return found.wire

        return self.service.definitions.get(task.pipeline, task.instance.definition_version, load)

    def execute(self, task: Task, stop: threading.Event) -> None:
        work_dir = _work_dir(self.home, task.pipeline_id, task.attempt_id)
        attempt_log = FileLog(running_log_path(self.home, task.pipeline_id, task.attempt_id), echo=self.echo)
        cancelled = CancelSignal()
        heartbeat = Heartbeat(self.service, task, cancelled, stop=stop, grace=self.options.grace)
        outcome: AttemptOutcome
        try:
            active = self._active(task)
            storage, engine_owner, execution = self._for_owner(task)
            ctx = AttemptContext(
                pipeline_id=task.pipeline_id,
                resolved=active.resolved,
                parameters=active.parameters,
                instance=planned_from_spec(task.instance.spec),
                attempt=task.attempt,
                storage=storage,
                scopes=active.scopes,
                work_dir=work_dir,
                log=attempt_log,
                engines=self.engines,
                hive_engine=self.hive_engine,
                owner=engine_owner or "",  # "": one namespace, as in local runs
                databases=self.databases,
                execution=execution,
                clock=SystemClock(),
                cancelled=cancelled,
                actual_start=task.instance.started_at,
            )
            attempt_log.write(f"{task.attempt_id} on {self.options.hostname} ({self.options.runner_id})\n")
            heartbeat.start()
            outcome = self.executor(ctx)
        except Exception as exc:  # the attempt boundary: anything becomes a FAILED outcome
            # The stack trace is for whoever fixes the bug (the attempt's errorStackTrace), not
            # for the log's reader.
            trace = traceback.format_exc()
            attempt_log.write(f"ERROR internal error: {type(exc).__name__}: {exc}\n")
            outcome = AttemptOutcome(
                status="FAILED", error_id=type(exc).__name__, error_message=str(exc), error_stack_trace=trace
            )
        finally:
            heartbeat.stop()
        if heartbeat.stopping and outcome.status != "FINISHED":
            # We are shutting down and asked the attempt to stop: give the task back untried.
            attempt_log.write(
                f"STOPPED the task runner is shutting down (grace {self.options.grace:g} s over); "
                "the attempt is given back to run again\n"
            )
            outcome = AttemptOutcome(status="CANCELED", error_message="the task runner stopped")
        elif cancelled.is_set() and not heartbeat.lost and outcome.status != "FINISHED":
            # The service asked it to stop (SetStatus TRY_CANCEL, DeactivatePipeline, a timeout):
            # whatever the interrupted work raised, the attempt was canceled.
            attempt_log.write("CANCELED the service asked this attempt to stop; its work was stopped\n")
            why = outcome.error_message
            outcome = AttemptOutcome(
                status="CANCELED",
                error_id="Canceled",
                error_message="canceled while running" + (f" ({why})" if why else ""),
            )
        self._save_log(task, attempt_log, outcome)
        shutil.rmtree(work_dir, ignore_errors=True)
        if heartbeat.lost:
            log.warning(
                "%s: %s was taken away (%s); not reporting",
                self.options.runner_id,
                task.attempt_id,
                heartbeat.lost,
            )
            return
        try:
            self.service.set_task_status(
                task.task_id,
                outcome.status,
                error_id=outcome.error_id,
                error_message=outcome.error_message,
                error_stack_trace=outcome.error_stack_trace,
            )
        except TaskNotFound as exc:
            log.warning("%s: %s could not be reported: %s", self.options.runner_id, task.attempt_id, exc)

    def _for_owner(self, task: Task) -> tuple[Storage, str | None, Callable[[], Any] | None]:
        """The storage view, the owner the engine works for (its store view and metastore
        namespace; None: the whole store, one namespace) and the execution plan of the task's owner."""
        if self.isolation is None:
            return self.storage, None, None
        from tailrace.runtime.sandbox import plan_execution

        owner = task.pipeline.owner or DEFAULT_OWNER
        settings = self.isolation.execution

        def execution() -> Any:
            return plan_execution(settings, owner=owner, owners=self._owners(), home=self.home)

        return self.storage.for_owner(owner), owner, execution

    def _owners(self) -> int:
        """How many owners hold an active key (a shell step's identity depends on it)."""
        with self.service.store.transaction(readonly=True) as tx:
            return len({k.owner for k in tx.keys.list() if k.active})

    def _save_log(self, task: Task, attempt_log: FileLog, outcome: AttemptOutcome) -> None:
        # Streamed from the local file: an attempt that printed gigabytes costs no memory here.
        path = attempt_log.close(lambda tail: closing_suffix(tail, outcome))
        storage = self.storage
        if self.isolation is not None:
            storage = log_storage(self.storage, task.log_uri, self.home, task.pipeline.owner)
        try:
            storage.write_file(task.log_uri, path)
            path.unlink(missing_ok=True)
        except TailraceError as exc:
            log.warning(
                "%s: could not write the log to %s (kept at %s): %s",
                task.attempt_id,
                task.log_uri,
                attempt_log.path,
                exc,
            )


class Heartbeat:
    """Reports progress every third of the lease while an attempt runs."""

    def __init__(
        self,
        service: PipelineService,
        task: Task,
        cancelled: threading.Event,
        *,
        stop: threading.Event,
        grace: float,
    ) -> None:
        self.service = service
        self.task = task
        self.cancelled = cancelled
        self.stop_requested = stop
        self.grace = grace
        self.lost: str | None = None
        self.stopping = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {task.attempt_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        # A third of the lease, and at most 5 s, so that a cancel is heard soon.
        interval = max(min(self.task.lease.total_seconds() / 3, 5.0), 0.05)
        next_beat = time.monotonic() + interval
        give_up_at: float | None = None
        while not self._done.wait(min(interval, 0.1)):
            now = time.monotonic()
            if self.stop_requested.is_set() and give_up_at is None:
                give_up_at = now + self.grace
            if give_up_at is not None and now >= give_up_at and not self.cancelled.is_set():
                self.stopping = True
                self.cancelled.set()
            if now < next_beat:
                continue
            next_beat = now + interval
            try:
                if self.service.report_task_progress(self.task.task_id):
                    self.cancelled.set()
            except TaskNotFound as exc:
                self.lost = str(exc)
                self.cancelled.set()
                return
            except Exception:  # the database may be briefly away; the lease leaves time to retry
                log.exception("heartbeat for %s failed", self.task.attempt_id)
