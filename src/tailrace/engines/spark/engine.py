"""SparkEngine: the ScriptEngine port on a process-wide SparkSession (see session.py)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tailrace.engines.abc import Capabilities, EngineSetup, ScriptRequest
from tailrace.engines.metastore import Metastore
from tailrace.engines.result import HiveError, ScriptResult
from tailrace.engines.runner import HiveRunner, log_lines
from tailrace.engines.spark import session as sessions
from tailrace.engines.spark.session import SparkOptions, SparkUnavailable
from tailrace.storage import Storage


class SparkEngine(HiveRunner):
    name = "spark"
    capabilities = Capabilities(
        distributed=True,
        spills_to_disk=True,  # Spark's shuffle and sort spill to spark.local.dir
        supports_udtf=True,  # LATERAL VIEW json_tuple/explode/posexplode are Spark SQL's own
        max_threads=None,
        interruptible=True,  # cancelJobGroup stops the running Spark job
    )

    def __init__(self, setup: EngineSetup) -> None:
        super().__init__(setup)
        self.options = options_of(setup)

    def run(self, request: ScriptRequest) -> ScriptResult:
        echo = log_lines(request)
        try:
            shared, started = sessions.acquire(self.options)
        except SparkUnavailable as exc:
            # The attempt fails like a failing statement: located at the script, retried per
            # the definition; nothing has been written.
            raise HiveError(str(exc), source=request.source, statement=None, line=None, column=None)
        t0 = time.monotonic()
        try:
            if started:
                echo(f"spark: session started on {self.options.master} in {started:.1f} s")
            else:
                echo(f"spark: reusing the session on {self.options.master}")
            storage = self.setup.storage.for_owner(request.owner) if request.owner else self.setup.storage
            hive = open_hive(
                storage, self.setup.metastore_for(request.owner), shared, self.options, self.setup.threads
            )

            def ready() -> None:
                echo(f"spark: run ready in {time.monotonic() - t0:.2f} s (per-attempt overhead)")

            return self.run_on(hive, request, ready=ready)
        finally:
            sessions.release(shared)


def options_of(setup: EngineSetup) -> SparkOptions:
    settings = setup.settings.get("spark") if setup.settings else None
    if isinstance(settings, SparkOptions):
        return settings
    return SparkOptions.from_settings(settings, setup.storage.home)


def open_hive(
    storage: Storage, metastore: Metastore, shared: Any, options: SparkOptions, threads: int | None = None
) -> Any:
    """A SparkHiveEngine on a fresh session of `shared` (own temp views), working in a new
    directory under the staging directory (removed by close())."""
    from tailrace.engines.spark.hive import SparkHiveEngine

    work = Path(options.staging_dir) / f"run-{uuid.uuid4().hex[:12]}"
    return SparkHiveEngine(storage, metastore, session=shared.newSession(), work_dir=work, threads=threads)
