"""The state store on SQLAlchemy Core: one implementation for SQLite and PostgreSQL.

Dialect differences are few and local: row locks (`FOR UPDATE`, `SKIP LOCKED`) only on
PostgreSQL, where SQLite's single write lock already serializes writers; an advisory lock on
PostgreSQL around the event insert so that event ids increase in commit order.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock, SystemClock
from tailrace.events.model import (
    ActionFailed,
    ActionFired,
    Event,
    EventError,
    StatusChanged,
    UnknownEvent,
    decode,
    encode,
)
from tailrace.state import schema
from tailrace.state.abc import (
    AccessKeys,
    Attempts,
    Components,
    Cursor,
    Cursors,
    Definitions,
    EventListener,
    Events,
    Instances,
    Leases,
    Pipelines,
    StateStore,
    StoredEvent,
    TaskRunners,
    Transaction,
)
from tailrace.state.coordination import SqlAccessKeys, SqlLeases, SqlTaskRunners
from tailrace.state.engine import BUSY_TIMEOUT_MS, READONLY, busy_error
from tailrace.state.migrations import current_version, migrate
from tailrace.state.records import StoreBusy
from tailrace.state.repos import SqlComponents, SqlDefinitions, SqlPipelines
from tailrace.state.runrepos import SqlAttempts, SqlInstances

log = logging.getLogger(__name__)

EVENT_LOCK = 0x7A11_0002  # pg_advisory_xact_lock key that orders event ids by commit


class SqlTransaction(Transaction):
    def __init__(self, conn: sa.Connection, store: SqlStateStore, *, readonly: bool) -> None:
        self.conn = conn
        self.store = store
        self.readonly = readonly
        self.pg = conn.dialect.name == "postgresql"
        self._events: list[Event] = []
        self._after: list[Callable[[], None]] = []
        self.committed_events: list[StoredEvent] = []
        self.pipelines: Pipelines = SqlPipelines(self)
        self.definitions: Definitions = SqlDefinitions(self)
        self.components: Components = SqlComponents(self)
        self.instances: Instances = SqlInstances(self)
        self.attempts: Attempts = SqlAttempts(self)
        self.events: Events = _SqlEvents(self)
        self.cursors: Cursors = _SqlCursors(self)
        self.keys: AccessKeys = SqlAccessKeys(self)
        self.leases: Leases = SqlLeases(self)
        self.runners: TaskRunners = SqlTaskRunners(self)

    def now(self) -> datetime:
        return self.store.clock.now()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)

    def next_wakeup(self) -> datetime | None:
        p, i, a = schema.pipelines, schema.instances, schema.attempts

        def earliest(column: sa.Column[Any]) -> sa.Select[Any]:
            return sa.select(sa.func.min(column, type_=schema.UtcDateTime()))

        queries = [
            earliest(p.c.next_window_at).where(p.c.state == "SCHEDULED"),
            earliest(i.c.due_at).where(i.c.due_at.is_not(None)),
            earliest(a.c.lease_expires_at).where(a.c.status == sa.literal_column("'RUNNING'")),
            earliest(p.c.updated_at).where(p.c.state == "DEACTIVATING"),
        ]
        times = [t for t in (self.conn.execute(q).scalar() for q in queries) if t is not None]
        return min(times) if times else None

    def queue_event(self, event: Event) -> None:
        if self.readonly:
            raise RuntimeError("a read-only transaction cannot record events")
        self._events.append(event)

    def flush_events(self) -> None:
        if not self._events:
            return
        events = self._with_owners(self._events)
        self._events = []
        rows = [_event_row(e) for e in events]
        if self.pg:
            # Held until commit: a later transaction's events cannot get lower ids yet commit first.
            self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK})
        ids = self.conn.execute(
            sa.insert(schema.events).returning(schema.events.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        for event_id, event in zip(ids, events, strict=True):
            self.committed_events.append(StoredEvent(id=event_id, event=event))

    def _with_owners(self, events: list[Event]) -> list[Event]:
        """Fill each event's owner from its pipeline (a pipeline's owner never changes, so the
        store caches them: one query per transaction at most, usually none)."""
        cache = self.store.owners  # shared by threads: read each entry once, into `owners`
        wanted = {e.pipeline_id for e in events if e.owner is None and e.pipeline_id is not None}
        owners = {pid: cache.get(pid) for pid in wanted}
        missing = [pid for pid, owner in owners.items() if owner is None]
        if missing:
            p = schema.pipelines
            rows = self.conn.execute(sa.select(p.c.id, p.c.owner).where(p.c.id.in_(missing)))
            found = {r[0]: r[1] for r in rows}
            owners.update(found)
            if len(cache) > 100_000:
                cache.clear()
            cache.update(found)
        out: list[Event] = []
        for e in events:
            owner = owners.get(e.pipeline_id) if e.owner is None and e.pipeline_id is not None else None
            out.append(_with_owner(e, owner) if owner is not None else e)
        return out

    def run_after_commit(self) -> None:
        for callback in self._after:
            try:
                callback()
            except Exception:  # a listener must not undo a committed transaction's outcome
                log.exception("after-commit callback failed")


def event_from_row(m: Mapping[Any, Any]) -> StoredEvent:
    at, owner, pid = m["at"], m["owner"], m["pipeline_id"]
    payload = m["payload"] or {}
    try:
        event = decode(m["type"], m["version"] or 1, payload, at=at, owner=owner, pipeline_id=pid)
    except EventError:  # a malformed row must not stop a reader: keep it, undecoded
        event = UnknownEvent(
            at=at,
            owner=owner,
            pipeline_id=pid,
            type_name=m["type"],
            version=m["version"] or 1,
            payload=payload,
        )
    return StoredEvent(id=m["id"], event=event)


def _with_owner(e: Event, owner: str) -> Event:
    # A copy with the owner set, without running the record's checks again (they passed).
    new = copy.copy(e)
    object.__setattr__(new, "owner", owner)
    return new


def _object_id(e: Event) -> str | None:
    if isinstance(e, StatusChanged):
        return e.object_id
    if isinstance(e, ActionFired | ActionFailed):
        return e.action_id
    return e.pipeline_id


def _event_row(e: Event) -> dict[str, Any]:
    type_name, version, payload = encode(e)
    return {
        "type": type_name,
        "version": version,
        "at": e.at,
        "owner": e.owner,
        "pipeline_id": e.pipeline_id,
        "object_id": _object_id(e),
        "payload": payload,
    }


class _SqlEvents(Events):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def append(self, event: Event) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"events.append takes a tailrace.events.model.Event; got {type(event).__name__}")
        self.tx.queue_event(event)


class _SqlCursors(Cursors):
    t = schema.cursors

    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def find(self, name: str) -> Cursor | None:
        row = self.tx.conn.execute(sa.select(self.t).where(self.t.c.name == name)).first()
        return Cursor(**dict(row._mapping)) if row else None

    def save(self, name: str, *, event_id: int, position: str, at: datetime) -> bool:
        values = {"event_id": event_id, "position": position, "updated_at": at}
        moved = self.tx.conn.execute(
            sa.update(self.t).where(self.t.c.name == name, self.t.c.event_id < event_id).values(**values)
        )
        if moved.rowcount:
            return True
        if self.tx.conn.execute(sa.select(self.t.c.name).where(self.t.c.name == name)).first() is not None:
            return False
        try:
            with self.tx.conn.begin_nested():
                self.tx.conn.execute(sa.insert(self.t).values(name=name, **values))
        except sa.exc.IntegrityError:  # another consumer of this name saved first
            return self.save(name, event_id=event_id, position=position, at=at)
        return True


class _FifoLock:
    """A lock handed to waiters in arrival order. SQLite's own lock is polled by sleeping
    waiters, so a thread that writes in a loop (the scheduler during a backfill) would get it
    back before any of them woke; queueing this process's writers here first serves each in turn."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        me = object()
        with self._cond:
            self._queue.append(me)
            if self._cond.wait_for(lambda: not self._held and self._queue[0] is me, timeout):
                self._queue.popleft()
                self._held = True
                return True
            self._queue.remove(me)
            self._cond.notify_all()
            return False

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


class SqlStateStore(StateStore):
    """The store over an engine from tailrace.state.engine.create_engine (migrated on open)."""

    def __init__(self, engine: sa.Engine, *, clock: Clock | None = None, auto_migrate: bool = True) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._listeners: list[EventListener] = []
        self._lock = threading.Lock()
        self.owners: dict[str, str] = {}
        """Pipeline owners by id, for filling events' owner (a pipeline's owner never changes)."""
        self._writers = _FifoLock() if engine.dialect.name == "sqlite" else None
        self._pg = engine.dialect.name == "postgresql"
        if auto_migrate:
            try:
                migrate(engine, now=self.clock.now())
            except sa.exc.OperationalError as exc:
                busy = busy_error(engine, exc)
                if busy is None:
                    raise
                raise busy from exc

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        writers = None if readonly else self._writers
        if writers is not None and not writers.acquire(BUSY_TIMEOUT_MS / 1000):
            raise StoreBusy(
                f"the metadata database stayed busy for {BUSY_TIMEOUT_MS // 1000} s (other writers "
                "of this process); try again"
            )
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{READONLY: readonly})
                if readonly and self._pg:
                    # PostgreSQL's READ COMMITTED gives each statement its own snapshot anyway, so a
                    # read-only transaction gains nothing from BEGIN/ROLLBACK but two round trips.
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                with conn.begin():
                    tx = SqlTransaction(conn, self, readonly=readonly)
                    yield tx
                    tx.flush_events()
        except sa.exc.OperationalError as exc:
            busy = busy_error(self.engine, exc)
            if busy is None:
                raise
            raise busy from exc
        finally:
            if writers is not None:
                writers.release()
        # Listeners and callbacks run after the turn is handed on (they may write themselves).
        if tx.committed_events:
            self._notify(tx.committed_events)
        tx.run_after_commit()

    def _notify(self, events: Sequence[StoredEvent]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(events)
            except Exception:
                log.exception("event listener failed")

    def events_after(
        self, cursor: int = 0, *, pipeline_id: str | None = None, limit: int = 1000
    ) -> list[StoredEvent]:
        t = schema.events
        q = sa.select(t).where(t.c.id > cursor)
        if pipeline_id is not None:
            q = q.where(t.c.pipeline_id == pipeline_id)
        q = q.order_by(t.c.id).limit(limit)
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{READONLY: True})
                with conn.begin():
                    return [event_from_row(row._mapping) for row in conn.execute(q)]
        except sa.exc.OperationalError as exc:
            busy = busy_error(self.engine, exc)
            if busy is None:
                raise
            raise busy from exc

    def last_event_id(self) -> int:
        with self.engine.connect() as conn:
            conn.execution_options(**{READONLY: True})
            with conn.begin():
                return int(conn.execute(sa.select(sa.func.max(schema.events.c.id))).scalar() or 0)

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            conn.execution_options(**{READONLY: True})
            with conn.begin():
                return current_version(conn)

    def close(self) -> None:
        with self._lock:
            self._listeners.clear()
