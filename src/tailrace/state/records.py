"""Records of the state store: frozen, keyword-only, times UTC-aware; statuses are str enums."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from tailrace.errors import ConflictError, NotFoundError
from tailrace.events.model import Event


class PipelineState(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    DEACTIVATING = "DEACTIVATING"
    INACTIVE = "INACTIVE"


class Status(StrEnum):
    """`@status` of instances, attempts and components (Developer Guide, "interpret status")."""

    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    CREATING = "CREATING"
    VALIDATING = "VALIDATING"
    WAITING_ON_DEPENDENCIES = "WAITING_ON_DEPENDENCIES"
    WAITING_FOR_RUNNER = "WAITING_FOR_RUNNER"
    ACTIVATING = "ACTIVATING"
    RUNNING = "RUNNING"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CASCADE_FAILED = "CASCADE_FAILED"
    CANCELED = "CANCELED"
    TIMEDOUT = "TIMEDOUT"
    SKIPPED = "SKIPPED"
    PAUSED = "PAUSED"
    FALSE = "FALSE"
    """A precondition attempt whose check did not hold (the instance retries)."""


TERMINAL: frozenset[Status] = frozenset(
    {Status.FINISHED, Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT, Status.SKIPPED}
)
"""Instance statuses nothing moves out of except SetStatus RERUN."""


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    ERROR = "ERROR"


class PipelineNotFound(NotFoundError):
    def __init__(self, pipeline_id: str) -> None:
        super().__init__(f"pipeline {pipeline_id!r} does not exist")
        self.pipeline_id = pipeline_id


class ObjectNotFound(NotFoundError):
    def __init__(self, pipeline_id: str, object_id: str, kind: str = "object") -> None:
        super().__init__(f"{kind} {object_id!r} does not exist in pipeline {pipeline_id!r}")
        self.pipeline_id = pipeline_id
        self.object_id = object_id


class TaskNotFound(NotFoundError):
    def __init__(self, task_id: str, why: str = "") -> None:
        super().__init__(f"task {task_id[:12]!r}… is not running" + (f": {why}" if why else ""))
        self.task_id = task_id


class DuplicateError(ConflictError):
    """A record with the same key already exists."""


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


LISTING_FIELDS = (
    "id",
    "pipeline_id",
    "component_id",
    "type",
    "status",
    "scheduled_start",
    "scheduled_end",
    "started_at",
    "ended_at",
    "attempt_count",
    "tries_left",
    "resource_id",
    "definition_version",
    "worker_group",
    "error_message",
    "head_attempt",
    "cascade_failed_on",
    "depends_on",
    "preconditions",
    "inputs",
    "outputs",
    "node",
)
"""The keys of Instances.listing's dicts: Instance fields, and three of its spec."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Where:
    """One condition of a page query (Instances.page, Attempts.page): `column IN values`
    ("in"), `column >= value` ("ge") or `column < value` ("lt"); a row with NULL there never
    matches. The columns a repository filters on are listed in its `page` docstring."""

    column: str
    op: Literal["in", "ge", "lt"]
    value: Any
    """A collection for "in" (statuses as their text), a datetime or a number otherwise."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Pipeline:
    id: str
    name: str
    unique_id: str
    owner: str = ""
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    state: PipelineState = PipelineState.PENDING
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None
    active_version: int | None = None
    activated_at: datetime | None = None
    """Time of the first activation (FIRST_ACTIVATION_DATE_TIME)."""
    start_override: datetime | None = None
    """startTimestamp of the current activation, when given."""
    windows_created: int = 0
    """How many schedule windows have been turned into instances (the scheduler's cursor)."""
    next_window_at: datetime | None = None
    """When the scheduler must create the next window (None: nothing more to create)."""
    last_activated_at: datetime | None = None
    """Time of the latest activation (an on-demand pipeline's run)."""
    activation: int = 0
    """Counts activations; on-demand pipelines get one window per activation."""
    health_status: HealthStatus | None = None
    finished_at: datetime | None = None
    deactivated_at: datetime | None = None
    latest_run_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", _frozen(self.tags))


@dataclass(frozen=True, kw_only=True, slots=True)
class DefinitionVersion:
    pipeline_id: str
    version: int
    wire: Mapping[str, Any]
    """The definition in API wire form: pipelineObjects, parameterObjects, parameterValues."""
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire", _frozen(self.wire))


@dataclass(frozen=True, kw_only=True, slots=True)
class Component:
    pipeline_id: str
    id: str
    name: str
    type: str | None
    category: str | None
    status: Status = Status.PENDING
    version: int = 1
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Resolved fields in wire form ({key: value or [values]}; refs as {"ref": id})."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))


@dataclass(frozen=True, kw_only=True, slots=True)
class Instance:
    pipeline_id: str
    id: str
    component_id: str
    category: str
    type: str
    window: int
    scheduled_start: datetime
    scheduled_end: datetime
    run_at: datetime
    status: Status
    definition_version: int
    queue: str | None = None
    """Where its attempts are handed out: 'wg:<workerGroup>', 'res:<resource instance>', '@resources'."""
    worker_group: str | None = None
    resource_id: str | None = None
    depends_on: tuple[str, ...] = ()
    preconditions: tuple[str, ...] = ()
    attempt_count: int = 0
    tries_left: int = 0
    head_attempt: str | None = None
    ready_at: datetime | None = None
    """Earliest time a runner may claim it (retry delay)."""
    due_at: datetime | None = None
    """When the scheduler must look at it next; None once nothing is pending."""
    late_at: datetime | None = None
    """lateAfterTimeout deadline; None when not set or already fired."""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cascade_failed_on: str | None = None
    error_message: str | None = None
    reruns: int = 0
    """How many times SetStatus RERUN restarted it (reruns do not count against maxActiveInstances)."""
    spec: Mapping[str, Any] = field(default_factory=dict)
    """Runtime settings the scheduler keeps for itself (retries, timeouts, actions); opaque here."""
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", _frozen(self.spec))

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, kw_only=True, slots=True)
class Attempt:
    pipeline_id: str
    id: str
    instance_id: str
    number: int
    status: Status
    task_id: str
    queue: str | None = None
    runner_id: str | None = None
    hostname: str | None = None
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    started_at: datetime
    ended_at: datetime | None = None
    error_id: str | None = None
    error_message: str | None = None
    error_stack_trace: str | None = None
    log_location: str | None = None
    cancel_reason: str | None = None
    """Set when the service wants the runner to stop (TRY_CANCEL, Terminate, deactivation...):
    ReportTaskProgress then answers canceled=true."""
    progress: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "progress", _frozen(self.progress))


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredEvent:
    """A committed event as the outbox holds it: its id (a cursor that increases in commit
    order; consumers de-duplicate on it) and the decoded typed event."""

    id: int
    event: Event


@dataclass(frozen=True, kw_only=True, slots=True)
class Cursor:
    """A durable consumer's position: the last event id it handled and, when it reads from a
    bus, the bus position to resume from."""

    name: str
    event_id: int
    position: str
    updated_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    """Kept in clear: SigV4 verification needs the raw secret for its HMAC."""
    owner: str
    created_at: datetime
    active: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskRunner:
    runner_id: str
    worker_group: str | None
    hostname: str | None
    heartbeat_at: datetime
    terminate: bool = False
