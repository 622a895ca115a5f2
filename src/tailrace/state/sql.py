"""The state store on SQLAlchemy Core: one implementation for SQLite and PostgreSQL.

Dialect differences are few and local: row locks (`FOR UPDATE`, `SKIP LOCKED`) only on
PostgreSQL, where SQLite's single write lock already serializes writers; an advisory lock on
PostgreSQL around the event insert so that event ids increase in commit order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock, SystemClock
from tailrace.state import schema
from tailrace.state.abc import (
    AccessKeys,
    Attempts,
    Components,
    Definitions,
    Event,
    EventListener,
    Events,
    Instances,
    Leases,
    Pipelines,
    StateStore,
    TaskRunners,
    Transaction,
)
from tailrace.state.coordination import SqlAccessKeys, SqlLeases, SqlTaskRunners
from tailrace.state.engine import READONLY, busy_error
from tailrace.state.migrations import current_version, migrate
from tailrace.state.repos import (
    SqlAttempts,
    SqlComponents,
    SqlDefinitions,
    SqlInstances,
    SqlPipelines,
    event_from_row,
)

log = logging.getLogger(__name__)

EVENT_LOCK = 0x7A11_0002  # pg_advisory_xact_lock key that orders event ids by commit


class SqlTransaction(Transaction):
    def __init__(self, conn: sa.Connection, store: SqlStateStore, *, readonly: bool) -> None:
        self.conn = conn
        self.store = store
        self.readonly = readonly
        self.pg = conn.dialect.name == "postgresql"
        self._events: list[dict[str, Any]] = []
        self._after: list[Callable[[], None]] = []
        self.committed_events: list[Event] = []
        self.pipelines: Pipelines = SqlPipelines(self)
        self.definitions: Definitions = SqlDefinitions(self)
        self.components: Components = SqlComponents(self)
        self.instances: Instances = SqlInstances(self)
        self.attempts: Attempts = SqlAttempts(self)
        self.events: Events = _SqlEvents(self)
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

    def queue_event(self, row: dict[str, Any]) -> None:
        if self.readonly:
            raise RuntimeError("a read-only transaction cannot record events")
        self._events.append(row)

    def flush_events(self) -> None:
        if not self._events:
            return
        if self.pg:
            # Held until commit: a later transaction's events cannot get lower ids yet commit first.
            self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK})
        rows = self._events
        self._events = []
        ids = self.conn.execute(
            sa.insert(schema.events).returning(schema.events.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        for event_id, row in zip(ids, rows, strict=True):
            self.committed_events.append(event_from_row({**row, "id": event_id}))

    def run_after_commit(self) -> None:
        for callback in self._after:
            try:
                callback()
            except Exception:  # a listener must not undo a committed transaction's outcome
                log.exception("after-commit callback failed")


class _SqlEvents(Events):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def append(
        self,
        type: str,
        *,
        at: datetime | None = None,
        pipeline_id: str | None = None,
        object_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        self.tx.queue_event(
            {
                "type": type,
                "at": at or self.tx.now(),
                "pipeline_id": pipeline_id,
                "object_id": object_id,
                "payload": dict(payload or {}),
            }
        )


class SqlStateStore(StateStore):
    """The store over an engine from tailrace.state.engine.create_engine (migrated on open)."""

    def __init__(self, engine: sa.Engine, *, clock: Clock | None = None, auto_migrate: bool = True) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._listeners: list[EventListener] = []
        self._lock = threading.Lock()
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
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{READONLY: readonly})
                with conn.begin():
                    tx = SqlTransaction(conn, self, readonly=readonly)
                    yield tx
                    tx.flush_events()
        except sa.exc.OperationalError as exc:
            busy = busy_error(self.engine, exc)
            if busy is None:
                raise
            raise busy from exc
        if tx.committed_events:
            self._notify(tx.committed_events)
        tx.run_after_commit()

    def _notify(self, events: Sequence[Event]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(events)
            except Exception:
                log.exception("event listener failed")

    def events_after(
        self, cursor: int = 0, *, pipeline_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
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
