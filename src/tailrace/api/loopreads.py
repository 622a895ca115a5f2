"""DescribePipelines on the event loop, over a PostgreSQL connection of its own.

Handing a call to a worker thread and back costs more than the call under load: at 200
clients on 2 cores, DescribePipelines took 1.1 ms of server CPU per call through the thread
pool and 0.75 ms on the loop (up to 32 threads and the loop handing the interpreter lock
around). The read is one indexed statement; a statement timeout bounds how long a slow
database can hold the loop, and after any database error the calls go back to the thread
pool for a while.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tailrace.api.auth import Caller
from tailrace.state import StateStore

if TYPE_CHECKING:
    from tailrace.api.operations import Operations

log = logging.getLogger(__name__)

OPERATIONS = frozenset({"DescribePipelines"})
STATEMENT_TIMEOUT_MS = 250
"""The longest one statement may hold the event loop (the read takes well under 1 ms)."""
CONNECT_TIMEOUT_S = 2
COOLDOWN_S = 30.0
"""After a database error, the calls run in the thread pool this long before the loop tries again."""


class LoopReads:
    """Runs OPERATIONS on the event loop's thread with a store of one connection; `dispatch`
    raises `LoopReadFailed` when the database fails, and the caller then uses the thread pool."""

    def __init__(
        self,
        operations: Operations,
        store: StateStore,
        *,
        cooldown: float = COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.operations = operations
        self.store = store
        self.cooldown = cooldown
        self.clock = clock
        self._resume_at = 0.0
        self._healthy = True
        self._probe: threading.Thread | None = None

    def takes(self, operation: str) -> bool:
        """Whether the loop serves `operation` now. After a failure and its cooldown, a probe
        connects in a thread of its own: the loop waits on no connect (2 s when the database is
        down) and takes the calls again only once the probe got through."""
        if operation not in OPERATIONS:
            return False
        if self._healthy:
            return True
        if self.clock() >= self._resume_at and self._probe is None:
            self._probe = threading.Thread(target=self._reconnect, name="loop-reads-probe", daemon=True)
            self._probe.start()
        return False

    def _reconnect(self) -> None:
        try:
            engine: sa.Engine = getattr(self.store, "engine")  # noqa: B009 (loop_reads_for: a SqlStateStore)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            self._healthy = True
        except Exception as exc:  # still down: the pool serves the calls for another cooldown
            log.info("the event loop's database connection is still failing (%s)", exc.__class__.__name__)
            self._resume_at = self.clock() + self.cooldown
        finally:
            self._probe = None

    def dispatch(self, operation: str, caller: Caller, params: dict[str, Any]) -> Mapping[str, Any] | None:
        assert operation in OPERATIONS
        try:
            return self.operations.describe_pipelines(caller, params, store=self.store)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
            self._healthy = False
            self._resume_at = self.clock() + self.cooldown
            log.warning(
                "%s on the event loop failed (%s); the thread pool serves it for %.0f s",
                operation,
                exc.__class__.__name__,
                self.cooldown,
            )
            raise LoopReadFailed(operation) from exc

    def close(self) -> None:
        engine = getattr(self.store, "engine", None)
        if engine is not None:
            engine.dispose()


class LoopReadFailed(Exception):
    """The database failed a read on the loop: run the call in the thread pool instead."""


def loop_reads_for(operations: Operations, store: StateStore) -> LoopReads | None:
    """A LoopReads over a connection of its own to `store`'s database, for PostgreSQL only
    (SQLite reads wait on its file lock, which must not block the loop)."""
    from tailrace.state.sql import SqlStateStore

    if not isinstance(store, SqlStateStore) or store.dialect != "postgresql":
        return None
    url = store.engine.url
    # Added to the URL's own options (a search_path, say), which connect_args would replace.
    options = f"{url.query.get('options', '')} -c statement_timeout={STATEMENT_TIMEOUT_MS}".strip()
    query: dict[str, str] = {"options": options}
    if "connect_timeout" not in url.query:
        query["connect_timeout"] = str(CONNECT_TIMEOUT_S)
    engine = sa.create_engine(
        url.update_query_dict(query),
        pool_size=1,
        max_overflow=0,
        pool_timeout=1,  # only the loop's thread uses it, one call at a time
    )
    own = SqlStateStore(engine, clock=store.clock, auto_migrate=False)
    return LoopReads(operations, own)
