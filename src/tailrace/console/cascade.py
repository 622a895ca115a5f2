"""What an action would do, found by doing it in a transaction that is rolled back.

The pipeline service's own SetStatus / DeactivatePipeline run against a store whose
transactions never commit; the instances whose status differs afterwards are the cascade.
Side effects outside the database (fired actions' log lines, listeners) are deferred to
after-commit callbacks in the store, so a rolled-back dry run has none.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tailrace.runtime.service import PipelineService
from tailrace.state import Status, Transaction
from tailrace.state.sql import SqlStateStore, SqlTransaction


class _Rollback(Exception):
    """Ends a dry run's transaction (rolled back)."""


@dataclass(frozen=True, kw_only=True)
class Change:
    instance_id: str
    component_id: str
    before: str
    after: str


class _DryStore:
    """The real store's reads; its write transactions are rolled back at the end."""

    def __init__(self, real: SqlStateStore, conn: Any) -> None:
        self.real = real
        self.conn = conn
        self.clock = real.clock

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        # Every transaction of the dry run shares the one outer transaction, rolled back by dry_run.
        yield SqlTransaction(self.conn, self.real, readonly=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def dry_run(
    service: PipelineService, pipeline_id: str, act: Callable[[PipelineService], Any]
) -> list[Change]:
    """The instance status changes `act(service)` would make to the pipeline; nothing is kept."""
    store = service.store
    if not isinstance(store, SqlStateStore):
        return []
    writers = getattr(store, "_writers", None)  # SQLite: one writer at a time in this process
    if writers is not None and not writers.acquire(30):
        return []
    try:
        with store.engine.connect() as conn:
            outer = conn.begin()
            try:
                dry = copy.copy(service)
                dry.store = _DryStore(store, conn)  # type: ignore[assignment]
                dry.tasks = copy.copy(service.tasks)
                dry.tasks.store = dry.store
                before = _statuses(conn, store, pipeline_id)
                act(dry)
                after = _statuses(conn, store, pipeline_id)
            finally:
                outer.rollback()
    finally:
        if writers is not None:
            writers.release()
    return [
        Change(
            instance_id=iid, component_id=after[iid][0], before=before.get(iid, ("", "(new)"))[1], after=st
        )
        for iid, (_, st) in sorted(after.items())
        if before.get(iid, ("", ""))[1] != st
    ]


def _statuses(conn: Any, store: SqlStateStore, pipeline_id: str) -> dict[str, tuple[str, str]]:
    tx = SqlTransaction(conn, store, readonly=True)
    return {
        i.id: (i.component_id, str(i.status)) for i in tx.instances.in_status(pipeline_id, frozenset(Status))
    }
