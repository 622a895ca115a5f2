"""What one attempt gets to run with, and what it reports back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tailrace.clock import Clock, SystemClock
from tailrace.definition import ResolvedDefinition
from tailrace.expressions import ExpressionError, Scope, render
from tailrace.plan import PlannedInstance, ScopeBuilder
from tailrace.storage import Storage


class LogSink(Protocol):
    def write(self, text: str) -> Any: ...


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
    hive_engine_factory: Callable[[], Any] | None = None
    """Returns a fresh tailrace.engines.hive.HiveEngine (the caller closes it)."""
    clock: Clock = field(default_factory=SystemClock)
    cancelled: threading.Event = field(default_factory=threading.Event)
    heartbeat: Callable[[], None] = lambda: None
    actual_start: datetime | None = None
    execution: Callable[[], Any] | None = None
    """On the service: returns the owner's tailrace.runtime.sandbox.Execution (or raises
    ExecutionRefused); None for single-user commands, whose steps run as the caller."""

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
