"""The "duckdb" engine: Hive scripts on an in-process DuckDB (tailrace.engines.hive.HiveEngine)."""

from __future__ import annotations

import threading

from tailrace.engines.abc import Capabilities, EngineSetup, ScriptEngine, ScriptRequest
from tailrace.engines.hive import HiveEngine
from tailrace.engines.hive.resources import SlotWaitCancelled
from tailrace.engines.result import ScriptInterrupted, ScriptResult


class DuckDBEngine(ScriptEngine):
    name = "duckdb"
    capabilities = Capabilities(
        distributed=False,
        spills_to_disk=True,  # to the run's own directory under [duckdb] temp_directory
        supports_udtf=True,  # json_tuple, explode, posexplode (tailrace.engines.hive.translate)
        max_threads=None,
        interruptible=True,  # duckdb's connection.interrupt()
    )

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        self._lock = threading.Lock()
        self._running: HiveEngine | None = None

    def run(self, request: ScriptRequest) -> ScriptResult:
        def echo(line: str) -> None:
            request.log.write(line + "\n")

        # An owner's run sees that owner's view of the store (its buckets, its warehouse).
        storage = self.setup.storage.for_owner(request.owner) if request.owner else self.setup.storage
        grant = None
        if self.setup.duckdb is not None:
            try:
                grant = self.setup.duckdb.acquire(
                    request.owner, threads=self.setup.threads, cancelled=request.cancelled, say=echo
                )
            except SlotWaitCancelled as exc:
                raise ScriptInterrupted(
                    str(exc), source=request.source, statement=None, line=None, column=None
                ) from None
        try:
            hive = HiveEngine(
                storage,
                self.setup.metastore_for(request.owner),
                work_dir=request.work_dir,
                threads=self.setup.threads,
                grant=grant,
            )
        except BaseException:
            if grant is not None:
                grant.release()
            raise
        with self._lock:
            self._running = hive
        try:
            if grant is not None:
                got = hive.settings()
                echo(
                    f"duckdb: memory_limit={got['memory_limit']}, threads={got['threads']}, "
                    "spilling to a private temporary directory"
                )
            for spec in request.tables:
                hive.register_table(spec)
            return hive.run_script(
                request.text,
                request.variables,
                source=request.source,
                echo=echo,
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
