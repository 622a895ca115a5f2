"""What one attempt gets to run with, and what it reports back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tailrace.clock import Clock, SystemClock
from tailrace.definition import ResolvedDefinition
from tailrace.engines.abc import LogSink
from tailrace.engines.registry import DEFAULT_ENGINE, EngineRegistry
from tailrace.expressions import ExpressionError, Scope, render
from tailrace.plan import PlannedInstance, ScopeBuilder
from tailrace.runtime.dbaccess import DatabaseAccess
from tailrace.storage import Storage

log = logging.getLogger("tailrace.worker")


class CancelSignal(threading.Event):
    """The attempt's `cancelled` event, which also runs hooks once when set: what a runner
    registers to stop work that does not poll the event (a DuckDB query's interrupt)."""

    def __init__(self) -> None:
        super().__init__()
        self._hooks: list[Callable[[], None]] = []
        self._hooks_lock = threading.Lock()

    def set(self) -> None:
        with self._hooks_lock:
            first = not self.is_set()
            super().set()
            hooks = list(self._hooks) if first else []
        for hook in hooks:
            _call(hook)

    @contextmanager
    def hook(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run `callback` (from the cancelling thread) if the signal is set while inside; at
        once if it is set already."""
        with self._hooks_lock:
            self._hooks.append(callback)
            already = self.is_set()
        if already:
            _call(callback)
        try:
            yield
        finally:
            with self._hooks_lock:
                self._hooks.remove(callback)


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a failed interrupt must not stop the others, nor the cancel itself
        log.exception("cancel hook failed")


class ListLog:
    """A log sink that keeps lines in memory (tests, and buffering before upload)."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.parts: list[str] = []
        self.echo = echo
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.parts.append(text)
        if self.echo is not None:
            self.echo(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            return "".join(self.parts)


@dataclass(frozen=True, kw_only=True)
class AttemptOutcome:
    status: str
    """FINISHED, FAILED, or FALSE (a precondition that did not hold)."""
    error_id: str | None = None
    error_message: str | None = None
    error_stack_trace: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    """Counters for the run summary (rows written, malformed lines, ...)."""

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"


@dataclass(kw_only=True)
class AttemptContext:
    pipeline_id: str
    resolved: ResolvedDefinition
    parameters: Mapping[str, Any]
    instance: PlannedInstance
    attempt: int
    storage: Storage
    scopes: ScopeBuilder
    work_dir: Path
    log: LogSink
    engines: EngineRegistry | None = None
    """Script engines by name (services.engines); None where none is configured."""
    hive_engine: str = DEFAULT_ENGINE
    """The engine that runs Hive scripts: the `hive_engine` setting (later, the resource's)."""
    owner: str = ""
    """The pipeline's owner: whose metastore namespace Hive scripts use ("" in local runs)."""
    databases: DatabaseAccess = field(default_factory=DatabaseAccess)
    """Which SQL databases and DynamoDB tables may be reached, and how (the [databases] settings)."""
    clock: Clock = field(default_factory=SystemClock)
    cancelled: threading.Event = field(default_factory=CancelSignal)
    """Set when the attempt must stop (cancel, deactivation, shutdown); see on_cancel."""
    heartbeat: Callable[[], None] = lambda: None
    actual_start: datetime | None = None
    execution: Callable[[], Any] | None = None
    """On the service: returns the owner's tailrace.runtime.sandbox.Execution (or raises
    ExecutionRefused); None for single-user commands, whose steps run as the caller."""

    @contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Call `callback` (e.g. an engine's interrupt) when the attempt is cancelled while inside
        the block; at once if it already is."""
        if isinstance(self.cancelled, CancelSignal):
            with self.cancelled.hook(callback):
                yield
            return
        # A plain Event (a caller that built its own): watch it from a thread.
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if self.cancelled.wait(0.1):
                    if not done.is_set():
                        _call(callback)
                    return

        watcher = threading.Thread(target=watch, name="cancel watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()

    @property
    def component(self) -> Any:
        return self.resolved.objects[self.instance.component_id]

    def scope(self) -> Scope:
        extra: dict[str, Any] = {"@status": "RUNNING"}
        if self.actual_start is not None:
            extra["@actualStartTime"] = self.actual_start
        extra["@attemptCount"] = self.attempt
        return self.scopes.instance_scope(self.instance, extra=extra)

    def field(self, name: str, scope: Scope | None = None, *, object_id: str | None = None) -> str | None:
        """A single string field of the component (or of object_id), with #{...} evaluated."""
        obj = self.resolved.objects[object_id or self.instance.component_id]
        raw = obj.string(name)
        if raw is None:
            return None
        try:
            value = render(raw, scope or self.scope())
        except ExpressionError as exc:
            raise exc.at(obj.id, name)
        return value if isinstance(value, str) else " ".join(value)

    def fields(self, name: str, scope: Scope | None = None) -> list[str]:
        """Every value of a (multi-valued) string field, each evaluated; lists are flattened."""
        obj = self.component
        out: list[str] = []
        the_scope = scope or self.scope()
        for raw in obj.strings(name):
            try:
                value = render(raw, the_scope)
            except ExpressionError as exc:
                raise exc.at(obj.id, name)
            out.extend([value] if isinstance(value, str) else value)
        return out
