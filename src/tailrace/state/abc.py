"""The state store port (layer 3): pipelines, definitions, components, instances, attempts,
events, access keys and leases, behind small ABCs whose docstrings are the contract.

One `StateStore` hands out `Transaction`s; every read and write happens inside one. A
transaction groups one repository per record kind (`tx.pipelines`, `tx.instances`, ...). Rules
every backend keeps (the contract suite in tests/state/ checks them):

- Records are frozen, keyword-only; every datetime is timezone-aware UTC.
- Status changes emit their typed event in the same transaction: `update()` of a pipeline,
  component, instance or attempt whose status changes appends a PipelineStateChanged /
  *StatusChanged (tailrace.events.model) with `old`, `new` and the caller's `detail`.
- `tr_events` is an outbox: events get an id that increases in commit order, are visible only
  once committed (a rolled-back transaction leaves none), and carry the pipeline's owner (filled
  from the pipeline when the producer left it None).
- `update()` is compare-and-set: with `expect_status` it changes nothing and returns None when
  the stored status is not one of them (a lost race, not an error).
- `claim_next()` never hands the same instance to two transactions that are open at once
  (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer lock on SQLite).
- Missing named records raise NotFoundError; duplicates raise ConflictError.
- Queries for due work (`due`, `claim_next`, `expired`) are served by indexes that leave out
  finished rows, so their cost follows the work that is due, not the history.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from tailrace.events.model import Event
from tailrace.state.records import (  # noqa: F401  (re-exported: the port and its records)
    LISTING_FIELDS,
    TERMINAL,
    AccessKey,
    Attempt,
    Component,
    Cursor,
    DefinitionVersion,
    DuplicateError,
    HealthStatus,
    Instance,
    ObjectNotFound,
    Pipeline,
    PipelineNotFound,
    PipelineState,
    Status,
    StoredEvent,
    TaskNotFound,
    TaskRunner,
    Where,
)

# --- repositories ------------------------------------------------------------------------------


class Pipelines(ABC):
    @abstractmethod
    def add(self, pipeline: Pipeline) -> Pipeline:
        """Insert a new pipeline. :raises DuplicateError: if the id or (owner, unique_id) exists."""

    @abstractmethod
    def find(self, pipeline_id: str) -> Pipeline | None:
        """The pipeline, or None."""

    def get(self, pipeline_id: str) -> Pipeline:
        """The pipeline. :raises PipelineNotFound: if there is none."""
        found = self.find(pipeline_id)
        if found is None:
            raise PipelineNotFound(pipeline_id)
        return found

    @abstractmethod
    def find_with_latest_ended(
        self, pipeline_id: str, *, category: str
    ) -> tuple[Pipeline, tuple[str, Status, datetime] | None] | None:
        """The pipeline and what `Instances.latest_ended(pipeline_id, category=category)` gives,
        in one read (DescribePipelines' two reads in one round trip), or None."""

    @abstractmethod
    def find_by_unique_id(self, owner: str, unique_id: str) -> Pipeline | None:
        """The pipeline created by `owner` with this uniqueId (CreatePipeline idempotency)."""

    @abstractmethod
    def lock(self, pipeline_id: str, *, skip_locked: bool = False) -> Pipeline | None:
        """Read the pipeline and hold its row lock until the transaction ends.

        Lifecycle operations and the scheduler take it so that they never interleave on one
        pipeline. With skip_locked, returns None instead of waiting when another transaction
        holds it. Returns None when the pipeline does not exist.
        """

    @abstractmethod
    def update(
        self, pipeline_id: str, *, detail: Mapping[str, Any] | None = None, **changes: Any
    ) -> Pipeline:
        """Change fields; a change of `state` appends a 'pipeline.state' event.

        `updated_at` is set from `changes['updated_at']`, which callers pass with their clock.
        :raises PipelineNotFound:
        """

    @abstractmethod
    def delete(self, pipeline_id: str) -> None:
        """Remove the pipeline with its definitions, components, instances and attempts.
        Events are kept (history). :raises PipelineNotFound:"""

    @abstractmethod
    def was_deleted(self, pipeline_id: str) -> bool:
        """Whether a pipeline with this id existed and was deleted ('pipeline.deleted' event)."""

    @abstractmethod
    def page(self, *, owner: str | None = None, after: str | None = None, limit: int = 100) -> list[Pipeline]:
        """Pipelines ordered by id, starting after the id `after`."""

    @abstractmethod
    def due(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Ids of pipelines in SCHEDULED state whose next window is due (next_window_at <= now),
        and of every DEACTIVATING pipeline, oldest due first."""

    @abstractmethod
    def count_in_state(self, owner: str, states: Collection[PipelineState]) -> int:
        """How many of `owner`'s pipelines are in one of `states` (per-owner limits)."""


class Definitions(ABC):
    @abstractmethod
    def add(self, pipeline_id: str, wire: Mapping[str, Any], *, at: datetime) -> DefinitionVersion:
        """Store a new version (1, 2, ...) of the pipeline's definition and return it."""

    @abstractmethod
    def find(self, pipeline_id: str, version: int) -> DefinitionVersion | None:
        """One stored version, or None."""


class Components(ABC):
    @abstractmethod
    def replace(self, pipeline_id: str, components: Sequence[Component]) -> None:
        """Make `components` the pipeline's components (those not listed are removed)."""

    @abstractmethod
    def list(self, pipeline_id: str) -> list[Component]:
        """Every component of the pipeline, ordered by id."""

    @abstractmethod
    def update(
        self, pipeline_id: str, component_id: str, *, status: Status, detail: Mapping[str, Any] | None = None
    ) -> Component:
        """Set the component's status, with a 'component.status' event. :raises ObjectNotFound:"""


class Instances(ABC):
    @abstractmethod
    def add_many(self, instances: Sequence[Instance]) -> int:
        """Insert instances and their dependency edges; ids that already exist are skipped
        (planning is idempotent). Returns how many were inserted."""

    @abstractmethod
    def find(self, pipeline_id: str, instance_id: str) -> Instance | None:
        """One instance, or None."""

    def get(self, pipeline_id: str, instance_id: str) -> Instance:
        found = self.find(pipeline_id, instance_id)
        if found is None:
            raise ObjectNotFound(pipeline_id, instance_id, "instance")
        return found

    @abstractmethod
    def find_many(self, pipeline_id: str, instance_ids: Collection[str]) -> dict[str, Instance]:
        """The instances among instance_ids that exist, by id."""

    @abstractmethod
    def update(
        self,
        pipeline_id: str,
        instance_id: str,
        *,
        expect_status: Collection[Status] | None = None,
        detail: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> Instance | None:
        """Compare-and-set. Returns the updated instance, or None when `expect_status` is given
        and the stored status is not in it. A status change appends 'instance.status'.
        :raises ObjectNotFound: when the instance does not exist."""

    @abstractmethod
    def in_status(
        self,
        pipeline_id: str,
        statuses: Collection[Status],
        *,
        component_id: str | None = None,
        limit: int | None = None,
        ready_only: bool = False,
    ) -> list[Instance]:
        """The pipeline's instances in these statuses, by (scheduled_start, id), the first `limit`;
        with ready_only, only those whose ready_at is set (ready, but held back)."""

    @abstractmethod
    def count_in_status(
        self,
        pipeline_id: str,
        statuses: Collection[Status],
        *,
        component_id: str | None = None,
        first_runs_only: bool = False,
    ) -> int:
        """How many of the component's instances are in these statuses (with first_runs_only,
        leaving out instances restarted by RERUN)."""

    @abstractmethod
    def dependents(self, pipeline_id: str, instance_ids: Collection[str]) -> list[Instance]:
        """Instances that depend on (or have as precondition or resource) any of instance_ids."""

    @abstractmethod
    def due(self, now: datetime, *, limit: int = 500) -> list[Instance]:
        """Instances whose due_at <= now, earliest first (across pipelines)."""

    @abstractmethod
    def claim_next(
        self, queues: Collection[str], now: datetime, *, owner: str | None = None
    ) -> Instance | None:
        """Lock and return the oldest WAITING_FOR_RUNNER instance of a SCHEDULED pipeline whose
        queue is in `queues` (an entry ending in '*' matches by prefix) and whose ready_at is not
        after now. The caller moves it on in the same transaction. Never returns an instance
        another open transaction has claimed. With `owner`, only that owner's pipelines count
        (an external task runner polling with its owner's key)."""

    @abstractmethod
    def ready_owners(self, queues: Collection[str], now: datetime) -> dict[str, datetime | None]:
        """The owners that claim_next(queues, now, owner=...) would find work for, each with the
        oldest ready_at of that work (fair sharing of runners between owners)."""

    @abstractmethod
    def created_since(self, owner: str, since: datetime) -> int:
        """How many instances of `owner`'s pipelines were created at or after `since`."""

    @abstractmethod
    def page(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[Instance]:
        """The pipeline's instances ordered by id, after the id `after`, meeting every condition
        of `where` (columns: status, component_id, scheduled_start, started_at)."""

    @abstractmethod
    def page_ids(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[str]:
        """The ids `page` would return, without reading the rest of the rows."""

    @abstractmethod
    def listing(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[tuple[Any, ...]]:
        """What `page` would return, as tuples of only the fields listings show, in the order of
        LISTING_FIELDS: status as its text, times as YYYY-MM-DDTHH:MM:SS text (UTC, to the
        second), depends_on and preconditions as tuples, and of the spec only inputs, outputs and
        node. Listing thousands of instances this way is several times cheaper than building their records."""

    @abstractmethod
    def periods(
        self,
        pipeline_id: str,
        *,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 100,
    ) -> list[tuple[datetime, datetime]]:
        """The pipeline's distinct (scheduled_start, scheduled_end) pairs, latest start first,
        with since <= start < before: a page of a long backfill without reading its instances."""

    @abstractmethod
    def latest_ended(
        self, pipeline_id: str, *, category: str | None = None
    ) -> tuple[str, Status, datetime] | None:
        """(id, status, ended_at) of the instance that ended last, optionally of one category
        (only those columns: DescribePipelines reads it on every call for healthStatus)."""

    @abstractmethod
    def count(self, pipeline_id: str | None = None) -> dict[Status, int]:
        """Instances per status (of one pipeline, or of all)."""


class Attempts(ABC):
    @abstractmethod
    def add(self, attempt: Attempt) -> Attempt:
        """Insert a new attempt. :raises DuplicateError: if its id or task id exists."""

    @abstractmethod
    def find(self, pipeline_id: str, attempt_id: str) -> Attempt | None:
        """One attempt, or None."""

    @abstractmethod
    def by_task(self, task_id: str) -> Attempt | None:
        """The attempt handed out under this task id, or None."""

    @abstractmethod
    def for_instance(self, pipeline_id: str, instance_id: str) -> list[Attempt]:
        """The instance's attempts, by number."""

    @abstractmethod
    def update(
        self,
        pipeline_id: str,
        attempt_id: str,
        *,
        expect_status: Collection[Status] | None = None,
        detail: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> Attempt | None:
        """Compare-and-set, as Instances.update; emits 'attempt.status' on a status change."""

    @abstractmethod
    def expired(self, now: datetime, *, limit: int = 100) -> list[Attempt]:
        """RUNNING attempts whose lease ended before now."""

    @abstractmethod
    def running(self, pipeline_id: str | None = None) -> list[Attempt]:
        """RUNNING attempts (of one pipeline, or of all)."""

    @abstractmethod
    def running_by_owner(self, *, exclude_queues: Collection[str] = ()) -> dict[str, int]:
        """RUNNING attempts per pipeline owner (owners with none are left out), not counting
        attempts handed out from `exclude_queues`."""

    @abstractmethod
    def find_many(self, pipeline_id: str, attempt_ids: Collection[str]) -> dict[str, Attempt]:
        """The attempts among attempt_ids that exist, by id."""

    @abstractmethod
    def page(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[Attempt]:
        """The pipeline's attempts ordered by id, after the id `after`, meeting every condition of
        `where` (columns: status, instance_id, started_at)."""


class Events(ABC):
    @abstractmethod
    def append(self, event: Event) -> None:
        """Record a typed event in the outbox; it becomes visible (with its id) when the
        transaction commits. An event whose owner is None gets its pipeline's owner."""


class Cursors(ABC):
    """Durable consumer cursors (tailrace.events.consumer): one named position per consumer."""

    @abstractmethod
    def find(self, name: str) -> Cursor | None:
        """The cursor, or None when the consumer never saved one."""

    @abstractmethod
    def save(self, name: str, *, event_id: int, position: str, at: datetime) -> bool:
        """Move the cursor to event_id (with its bus position). Never moves it back: returns
        False and changes nothing when the stored event id is already >= event_id."""


class AccessKeys(ABC):
    @abstractmethod
    def add(self, key: AccessKey) -> AccessKey:
        """Store a key. :raises DuplicateError: if the access key id exists."""

    @abstractmethod
    def find(self, access_key_id: str) -> AccessKey | None:
        """The key, or None."""

    @abstractmethod
    def list(self, owner: str | None = None) -> list[AccessKey]:
        """Keys (of one owner, or all) by access key id."""

    @abstractmethod
    def set_active(self, access_key_id: str, active: bool) -> None:
        """Enable or disable a key. :raises NotFoundError:"""

    @abstractmethod
    def set_stored_secret(self, access_key_id: str, stored: str) -> None:
        """Replace the secret as stored (its encrypted form). :raises NotFoundError:"""


class Leases(ABC):
    @abstractmethod
    def acquire(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        """Take or renew the named lease until `until`. True when `holder` now holds it: it was
        free, expired (expires_at <= now) or already held by `holder`."""

    @abstractmethod
    def release(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` holds it."""

    @abstractmethod
    def holder(self, name: str, *, now: datetime) -> str | None:
        """Who holds the lease now, or None."""


class TaskRunners(ABC):
    @abstractmethod
    def beat(self, runner: TaskRunner) -> TaskRunner:
        """Record a ReportTaskRunnerHeartbeat (insert or update); returns the stored record,
        whose `terminate` flag the runner must obey."""

    @abstractmethod
    def list(self) -> list[TaskRunner]:
        """Every runner that ever reported, by id."""


class Transaction(ABC):
    """One unit of work: everything done through it commits or rolls back together."""

    pipelines: Pipelines
    definitions: Definitions
    components: Components
    instances: Instances
    attempts: Attempts
    events: Events
    cursors: Cursors
    keys: AccessKeys
    leases: Leases
    runners: TaskRunners

    @abstractmethod
    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run callback once the transaction has committed (never on rollback)."""

    @abstractmethod
    def next_wakeup(self) -> datetime | None:
        """The earliest time anything falls due: a SCHEDULED pipeline's next_window_at, an
        instance's due_at, a RUNNING attempt's lease expiry (a DEACTIVATING pipeline is due now:
        the earliest of the others, or its updated_at). None when nothing is scheduled."""


EventListener = Callable[[Sequence[StoredEvent]], None]


class StateStore(ABC):
    """The metadata store. Thread-safe: each thread opens its own transactions."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""

    @abstractmethod
    def transaction(self, *, readonly: bool = False) -> AbstractContextManager[Transaction]:
        """Open a transaction: commits when the block ends normally, rolls back on an exception.

        Write transactions on SQLite take the write lock at once (BEGIN IMMEDIATE) and wait for
        it up to the busy timeout, so two processes never fail on a lock upgrade. `readonly`
        transactions must not write.
        """

    @abstractmethod
    def events_after(
        self, cursor: int = 0, *, pipeline_id: str | None = None, limit: int = 1000
    ) -> list[StoredEvent]:
        """Committed events with id > cursor, in id order."""

    @abstractmethod
    def last_event_id(self) -> int:
        """The highest committed event id (0 when none)."""

    @abstractmethod
    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call listener with the events (StoredEvent: outbox id and typed event) of each
        transaction this process commits, in the committing thread, after commit. Only this
        process hears them: other processes follow the event bus (tailrace.events.relay).
        Returns a function that unsubscribes."""

    @abstractmethod
    def schema_version(self) -> int:
        """The migration level of the database."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The engine passed in by the caller is left to the caller."""


def iter_pages(fetch: Callable[[str | None], list[Any]], key: Callable[[Any], str]) -> Iterator[Any]:
    """Walk a paged query (`fetch(after)`) to the end."""
    after: str | None = None
    while True:
        rows = fetch(after)
        if not rows:
            return
        yield from rows
        after = key(rows[-1])
