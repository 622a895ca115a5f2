"""The engine port: run a Hive-dialect script with variables against a metastore.

An engine is chosen by name from `tailrace.engines.registry` ("duckdb" today, Spark next).
Behaviour that differs between engines is declared in `Capabilities`, not tested by name.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from tailrace.engines.metastore import Metastore, TableSpec
from tailrace.engines.result import HiveError, ScriptInterrupted, ScriptResult, StatementResult

if TYPE_CHECKING:
    from tailrace.engines.hive.resources import DuckDBResources
    from tailrace.storage import Storage

__all__ = [
    "Capabilities",
    "EngineSetup",
    "HiveError",
    "LogSink",
    "ScriptEngine",
    "ScriptInterrupted",
    "ScriptRequest",
    "ScriptResult",
    "StatementResult",
]


class LogSink(Protocol):
    def write(self, text: str) -> object: ...


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What an engine can do, as data (callers branch on these, never on the engine's name)."""

    distributed: bool
    """Statements run on a cluster rather than in this process."""
    spills_to_disk: bool
    """Joins and sorts larger than memory go to the work directory instead of failing."""
    supports_udtf: bool
    """LATERAL VIEW with table-generating functions (explode, posexplode, json_tuple)."""
    max_threads: int | None = None
    """Threads one script may use; None: as many as the host (or cluster) offers."""
    interruptible: bool = True
    """interrupt() stops a running statement (otherwise only between statements)."""


MetastoreFor = Callable[[str], Metastore]
"""The metastore namespace of an owner (the pipeline's owner; "" for local one-shot runs)."""


@dataclass(frozen=True, kw_only=True)
class EngineSetup:
    """What every engine of one installation is built on (services.py makes it once)."""

    storage: Storage
    metastore_for: MetastoreFor
    threads: int | None = None
    """Threads per script; None lets the engine decide."""
    settings: Mapping[str, object] = field(default_factory=dict)
    """Engine sections of tailrace.toml by engine name (`[spark]` is settings["spark"])."""
    duckdb: DuckDBResources | None = None
    """The host's DuckDB budget ([duckdb] in tailrace.toml); None: DuckDB's own defaults."""


@dataclass(frozen=True, kw_only=True)
class ScriptRequest:
    """One script run. Variables fill `${NAME}` / `${hivevar:NAME}`; hiveconf fills
    `${hiveconf:K}` and starts as if `SET K=V` had run. `tables` are staged for this run only
    (visible to the script, never saved in the metastore)."""

    text: str
    source: str = "<script>"
    """Name used in error messages (file, URI, or `object.field`)."""
    variables: Mapping[str, str] = field(default_factory=dict)
    hiveconf: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""
    """Whose metastore namespace the script reads and writes."""
    work_dir: Path
    """Scratch space for this run (spills, staging); the engine removes what it wrote there."""
    log: LogSink
    """Receives each statement's text before it runs and the engine's messages, line by line."""
    tables: Sequence[TableSpec] = ()
    cancelled: threading.Event | None = None
    """The cancel hook: once set, no further statement starts."""
    on_statement: Callable[[StatementResult], None] | None = None
    """Called with each statement's result as soon as it is done (progress, heartbeats)."""


class ScriptEngine(ABC):
    """Runs Hive scripts. One object runs one script at a time; build one per attempt.

    Contract (tests/engines/test_engine_port.py, every engine passes it):
    - `run` executes the statements in order and returns a ScriptResult: one StatementResult
      per statement run (kind, table, rows written, malformed counts), totals as properties.
    - The first failing statement raises HiveError naming source, statement number, line and
      column; its `partial` holds the statements that ran; later statements do not run.
    - Tables are read and written in `request.owner`'s metastore namespace only; staged
      `request.tables` are dropped when `run` returns.
    - `interrupt()` may be called from any thread: the running statement stops as soon as the
      engine can stop it (between statements at the latest) and `run` raises ScriptInterrupted,
      a HiveError. With nothing running it does nothing. A set `request.cancelled` has the
      same effect before each statement.
    - `close()` releases what the engine holds; the object is not used afterwards.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, setup: EngineSetup) -> None:
        self.setup = setup

    @abstractmethod
    def run(self, request: ScriptRequest) -> ScriptResult:
        """Run the script. :raises HiveError: on the first failing statement (ScriptInterrupted
        when it was stopped from outside)."""

    @abstractmethod
    def interrupt(self) -> None:
        """Stop the script that is running (from another thread); no-op when idle."""

    def close(self) -> None:  # noqa: B027 - engines holding nothing between runs need no close
        """Release what the engine holds between runs."""
