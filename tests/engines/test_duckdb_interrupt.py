"""interrupt() from another thread stops a long DuckDB query inside a statement (not only
between statements) and the run ends with ScriptInterrupted, a HiveError at that statement."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest
from hive_helpers import write_text

from tailrace.engines.abc import EngineSetup, HiveError, ScriptInterrupted, ScriptRequest
from tailrace.engines.metastore import MemoryMetastore
from tailrace.engines.registry import EngineRegistry
from tailrace.storage import Storage

# About 10^10 row pairs through a nested-loop join: minutes of work unless interrupted.
LONG = "SELECT count(*) FROM nums a JOIN nums b ON (a.n * 7 + b.n) % 1000003 = 1"


class Signal:
    """A log sink that raises `started` when the long statement's text is echoed (just before
    the engine hands it to DuckDB)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        if "JOIN nums b" in text:
            self.started.set()
        return len(text)


def test_a_long_query_is_interrupted_from_another_thread(data_home: Path) -> None:
    write_text(data_home / "s3" / "b" / "nums" / "part-0", [str(i) for i in range(100_000)])
    metastore = MemoryMetastore()
    registry = EngineRegistry(
        EngineSetup(storage=Storage(home=data_home), metastore_for=lambda _owner: metastore, threads=2)
    )
    engine = registry.create("duckdb")
    assert engine.capabilities.interruptible
    log = Signal()

    def interrupter() -> None:
        log.started.wait()
        engine.interrupt()

    thread = threading.Thread(target=interrupter)
    thread.start()
    try:
        with pytest.raises(ScriptInterrupted) as caught:
            engine.run(
                ScriptRequest(
                    text=f"CREATE EXTERNAL TABLE nums (n bigint) LOCATION 's3://b/nums';\n{LONG}",
                    source="long.q",
                    work_dir=data_home / "work",
                    log=log,
                )
            )
    finally:
        log.started.set()  # never leave the helper thread waiting
        thread.join()
    err = caught.value
    assert isinstance(err, HiveError)
    assert (
        str(err) == "long.q:2:1: statement 2: interrupted: the script was stopped before this statement ended"
    )
    # DuckDB itself stopped the running query (the check between statements came before it).
    assert isinstance(err.__context__, duckdb.InterruptException)
    assert [s.kind for s in err.partial.statements] == ["CREATE TABLE"]
    assert not (data_home / "work").exists()
    # The interrupt ended that run only: the same engine object runs the next script.
    again = engine.run(ScriptRequest(text="SELECT count(*) FROM nums", work_dir=data_home / "w2", log=log))
    engine.close()
    assert again.statements[0].select_rows == [("100000",)]
