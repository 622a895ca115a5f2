"""Stopping a DuckDB connection's work from another thread."""

from __future__ import annotations

import threading

import duckdb


class Interrupter:
    """`fire()` interrupts the connection's running query and every later one until `stop()`.

    DuckDB forgets an interrupt that comes between two of its queries (the next one starts
    afresh), and one Hive statement runs several, so a thread repeats it every 20 ms.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._fired = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def fire(self) -> None:
        with self._lock:
            if self._fired.is_set() or self._stopped.is_set():
                return
            self._fired.set()
            self._thread = threading.Thread(target=self._repeat, name="duckdb interrupt", daemon=True)
            self._thread.start()

    def _repeat(self) -> None:
        while True:
            try:
                self.con.interrupt()
            except duckdb.Error:  # closed: nothing runs any more
                return
            if self._stopped.wait(0.02):
                return

    def stop(self) -> None:
        """End the repeating (call before closing the connection)."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        if thread is not None:
            thread.join()
