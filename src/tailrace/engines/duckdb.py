"""The "duckdb" engine: Hive scripts on an in-process DuckDB (tailrace.engines.hive.HiveEngine)."""

from __future__ import annotations

from tailrace.engines.abc import Capabilities, ScriptRequest
from tailrace.engines.hive import HiveEngine
from tailrace.engines.hive.resources import SlotWaitCancelled
from tailrace.engines.result import ScriptInterrupted, ScriptResult
from tailrace.engines.runner import HiveRunner, log_lines


class DuckDBEngine(HiveRunner):
    name = "duckdb"
    capabilities = Capabilities(
        distributed=False,
        spills_to_disk=True,  # to the run's own directory under [duckdb] temp_directory
        supports_udtf=True,  # json_tuple, explode, posexplode (tailrace.engines.hive.translate)
        max_threads=None,
        interruptible=True,  # duckdb's connection.interrupt()
    )

    def run(self, request: ScriptRequest) -> ScriptResult:
        echo = log_lines(request)
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

        def ready() -> None:
            if grant is not None:
                got = hive.settings()
                echo(
                    f"duckdb: memory_limit={got['memory_limit']}, threads={got['threads']}, "
                    "spilling to a private temporary directory"
                )

        return self.run_on(hive, request, ready=ready)
