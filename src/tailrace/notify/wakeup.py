"""Waking the delivery loops of other processes when deliveries are committed.

In its own process Publish wakes the loop directly (TopicService.on_commit). On PostgreSQL the
transaction that adds deliveries also sends `NOTIFY tailrace_sns_deliveries`, which PostgreSQL
delivers to listeners only when (and if) that transaction commits; each process's delivery loop
keeps one connection listening and starts a round when a notification arrives. So a Publish
served by another API process is sent at once, not at the next poll, and durability is
unchanged: the rows are committed before anyone is woken. SQLite has one process writing
(the loop's poll remains the fallback everywhere).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger("tailrace.notify")

CHANNEL = "tailrace_sns_deliveries"


def announce(conn: sa.Connection) -> None:
    """Inside a transaction that added deliveries: tell the other processes at its commit."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


class Listener:
    """A thread on its own PostgreSQL connection that calls `wake` for each notification (and
    reconnects after a failure, with a pause). A no-op on other databases."""

    def __init__(self, engine: sa.Engine, wake: Callable[[], None], *, retry: float = 5.0) -> None:
        self.engine = engine
        self.wake = wake
        self.retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> Listener:
        if self.engine.dialect.name != "postgresql":
            return self
        self._thread = threading.Thread(target=self._run, name="tailrace-notify-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.engine.raw_connection()
            except Exception as exc:  # the database may be away for a while: poll meanwhile
                log.warning("delivery wake-ups: cannot connect (%s); polling until it is back", exc)
                self._stop.wait(self.retry)
                continue
            try:
                conn = raw.driver_connection
                assert conn is not None
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        self.wake()
            except Exception as exc:
                self.listening.clear()
                log.warning("delivery wake-ups: listener failed (%s); reconnecting", exc)
                self._stop.wait(self.retry)
            finally:
                try:
                    raw.invalidate()  # never back to the pool: it holds LISTEN state
                except Exception:
                    pass
