"""What the DuckDB and Spark engines share: one Hive engine object per attempt, run and closed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from tailrace.engines.abc import EngineSetup, ScriptEngine, ScriptRequest
from tailrace.engines.metastore import TableSpec
from tailrace.engines.result import ScriptResult, StatementResult


class HiveScripts(Protocol):
    """The part of HiveEngine (and SparkHiveEngine) an attempt uses."""

    def register_table(self, spec: TableSpec, *, persist: bool = False) -> None: ...

    def run_script(
        self,
        text: str,
        variables: Mapping[str, str] | None = None,
        *,
        source: str = "<script>",
        echo: Callable[[str], None] | None = None,
        hiveconf: Mapping[str, str] | None = None,
        on_statement: Callable[[StatementResult], None] | None = None,
        echo_statements: bool = False,
        cancelled: threading.Event | None = None,
    ) -> ScriptResult: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


def log_lines(request: ScriptRequest) -> Callable[[str], None]:
    """The attempt log as an echo: one line per message."""

    def echo(line: str) -> None:
        request.log.write(line + "\n")

    return echo


class HiveRunner(ScriptEngine):
    """A ScriptEngine that builds a Hive engine object per attempt: run_on runs the request on
    it and closes it; interrupt() reaches whichever one is running."""

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        self._lock = threading.Lock()
        self._running: HiveScripts | None = None

    def run_on(
        self, hive: HiveScripts, request: ScriptRequest, *, ready: Callable[[], None] | None = None
    ) -> ScriptResult:
        """Stage request.tables on `hive`, call `ready` (the engine's own log lines), run the
        script with the request's variables, hooks and log; `hive` is closed afterwards."""
        with self._lock:
            self._running = hive
        try:
            for spec in request.tables:
                hive.register_table(spec)
            if ready is not None:
                ready()
            return hive.run_script(
                request.text,
                request.variables,
                source=request.source,
                echo=log_lines(request),
                hiveconf=request.hiveconf,
                on_statement=request.on_statement,
                echo_statements=True,
                cancelled=request.cancelled,
            )
        finally:
            with self._lock:
                self._running = None
            hive.close()

    def interrupt(self) -> None:
        with self._lock:
            if self._running is not None:
                self._running.interrupt()
