"""One SparkSession per process, started lazily on first use and kept for later attempts.

Starting the JVM and the session costs seconds to tens of seconds; a worker process pays it once.
Each script run gets `session.newSession()`: its own temporary views and SQL settings on the
shared SparkContext, so concurrent attempts do not see each other's tables.

pyspark is imported here only, inside functions: `tailrace --help` and DuckDB-only installs
never load it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tailrace.errors import ConfigError, TailraceError

DEFAULT_MASTER = "local[*]"

# Hive semantics where Spark's defaults differ (docs/engines.md): failed casts and overflow give
# NULL (ANSI off), duplicate map keys keep the last one, timestamps are read and written in UTC.
HIVE_CONF: Mapping[str, str] = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    "spark.sql.legacy.timeParserPolicy": "LEGACY",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    # One task per input file (never split, never packed): rows keep their input position,
    # which is the tie-breaker of ORDER BY as in the DuckDB engine (and gzip never splits).
    "spark.sql.files.maxPartitionBytes": str(1 << 40),
    "spark.sql.files.openCostInBytes": str(1 << 40),
    # tailrace substitutes ${...} itself (an owner's script sees no server environment); Spark's
    # own substitution would replace ${env:NAME} and ${system:NAME} from the driver's process.
    "spark.sql.variable.substitute": "false",
}


_QUIET_LOG4J = """\
rootLogger.level = off
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %m%n
"""


class SparkUnavailable(TailraceError):
    """The Spark master cannot be reached, refuses us, or pyspark/Java is missing."""


@dataclass(frozen=True, kw_only=True)
class SparkOptions:
    """The `[spark]` section of tailrace.toml as the engine needs it."""

    master: str = DEFAULT_MASTER
    conf: tuple[tuple[str, str], ...] = ()
    staging_dir: Path = Path("/tmp/tailrace-spark")
    """Where inputs are staged and results land before they are committed: a directory every
    worker of the cluster reads and writes at the same path (shared filesystem)."""
    executor_timeout: float = 60.0
    """Seconds to wait for the first executor on a cluster master before the attempt fails."""
    spark_home: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, home: Path | None = None) -> SparkOptions:
        """From config.SparkSettings (or None: the defaults, staging under `home`)."""
        staging = getattr(settings, "staging_dir", None) or (
            (home or Path(".tailrace")) / "spark" / "staging"
        )
        return cls(
            master=getattr(settings, "master", None) or DEFAULT_MASTER,
            conf=tuple(sorted(dict(getattr(settings, "conf", {}) or {}).items())),
            staging_dir=Path(staging).resolve(),
            executor_timeout=float(getattr(settings, "executor_timeout", 60.0)),
        )

    def with_master(self, master: str | None) -> SparkOptions:
        if not master:
            return self
        from dataclasses import replace

        return replace(self, master=master)


def check_master(master: str) -> None:
    """Refuse a malformed master URL, and a cluster master nobody listens on (fast, clear),
    before a JVM is started for it."""
    if master == "local" or master.startswith("local["):
        return
    parts = urlsplit(master)
    if parts.scheme not in ("spark", "sc") or not parts.hostname:
        raise ConfigError(
            f"Spark master {master!r} is not one of local[N], spark://HOST:PORT or sc://HOST:PORT"
        )
    port = parts.port or (7077 if parts.scheme == "spark" else 15002)
    try:
        with socket.create_connection((parts.hostname, port), timeout=5):
            pass
    except OSError as exc:
        raise SparkUnavailable(
            f"Spark master {master} is not reachable ({exc.strerror or exc}); start it, or set "
            "[spark] master in tailrace.toml / --master"
        ) from None


@dataclass
class _Held:
    key: tuple[Any, ...]
    session: Any
    started_seconds: float
    users: int = 0
    runs: int = field(default=0)


_lock = threading.Lock()
_held: _Held | None = None


def acquire(options: SparkOptions) -> tuple[Any, float]:
    """The process's SparkSession for these options: (session, seconds spent starting it now,
    0.0 when it was already running). Only one SparkContext may live in a JVM, so asking for
    another master stops the idle one first."""
    global _held
    key = (options.master, options.conf)
    with _lock:
        if _held is not None and _held.key == key and not _stopped(_held.session):
            _held.users += 1
            _held.runs += 1
            return _held.session, 0.0
        if _held is not None:
            if _held.users:
                raise SparkUnavailable(
                    f"a Spark session on {_held.key[0]} is in use by this process; one process runs "
                    f"one Spark master at a time (asked for {options.master})"
                )
            _stop(_held.session)
            _held = None
        check_master(options.master)
        t0 = time.monotonic()
        session = _start(options)
        _held = _Held(key=key, session=session, started_seconds=time.monotonic() - t0, users=1, runs=1)
        return session, _held.started_seconds


def release(session: Any) -> None:
    with _lock:
        if _held is not None and _held.session is session:
            _held.users = max(0, _held.users - 1)


def shutdown() -> None:
    """Stop the process's session (tests, process exit)."""
    global _held
    with _lock:
        if _held is not None:
            _stop(_held.session)
            _held = None


def _stopped(session: Any) -> bool:
    try:
        return bool(session.sparkContext._jsc is None)
    except Exception:
        return True


def _stop(session: Any) -> None:
    try:
        session.stop()
    except Exception:  # a dead JVM has nothing left to stop
        pass


def _start(options: SparkOptions) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "the spark engine needs pyspark (pip install 'tailrace[spark]') and a Java runtime"
        ) from None
    options.staging_dir.mkdir(parents=True, exist_ok=True)
    if "SPARK_CONF_DIR" not in os.environ:
        # The driver JVM's console log stays quiet (failures reach the attempt log as HiveError);
        # an appender must be configured, or Spark loads its own chatty defaults. An operator's
        # SPARK_CONF_DIR (with its log4j2.properties) wins.
        conf_dir = options.staging_dir / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "log4j2.properties").write_text(_QUIET_LOG4J, encoding="utf-8")
        os.environ["SPARK_CONF_DIR"] = str(conf_dir)
    builder = SparkSession.builder.appName("tailrace")
    if options.master.startswith("sc://"):
        builder = builder.remote(options.master)
    else:
        builder = builder.master(options.master)
        # Executors of a standalone cluster get the same Hive semantics via the session conf.
        for k, v in HIVE_CONF.items():
            builder = builder.config(k, v)
        builder = builder.config("spark.local.dir", str(options.staging_dir / "local"))
    for k, v in options.conf:
        builder = builder.config(k, v)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        hint = (
            " (the master did not accept the application: not a Spark master, another Spark "
            "version, or it refused us)"
            if options.master.startswith("spark://")
            else ""
        )
        raise SparkUnavailable(
            f"cannot start a Spark session on {options.master}{hint}: {first_line(exc)}"
        ) from None
    if options.master.startswith("sc://"):
        session.conf.set("spark.sql.variable.substitute", "false")  # (see HIVE_CONF)
    else:
        session.sparkContext.setLogLevel("OFF")  # failures reach the attempt log as HiveError
    import logging

    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    if options.master.startswith("spark://"):
        _wait_for_executor(session, options)
    return session


def _wait_for_executor(session: Any, options: SparkOptions) -> None:
    """A master that accepts the connection but gives no executor (no worker, or it refuses
    the application) would leave the first job waiting forever: fail the attempt instead."""
    deadline = time.monotonic() + options.executor_timeout
    sc = session.sparkContext
    while time.monotonic() < deadline:
        try:
            # The driver itself is one entry; any more are executors.
            if sc._jsc.sc().getExecutorMemoryStatus().size() > 1:
                return
        except Exception:
            break
        time.sleep(0.25)
    _stop(session)
    raise SparkUnavailable(
        f"Spark master {options.master} gave no executor within {options.executor_timeout:.0f} s "
        "(no worker registered, the master refused the application, or it is not a Spark master)"
    )


def first_line(exc: BaseException) -> str:
    """A Spark/py4j error as one readable line (no JVM stack trace)."""
    text = str(exc).strip()
    if text.startswith("An error occurred while calling"):
        # py4j: the Java exception is on the next line, as ": java.lang.X: message".
        cause = next((x[2:] for x in text.splitlines() if x.startswith(": ")), "")
        if cause:
            return cause.strip()[:500]
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "Traceback", "JVM stacktrace", "---")):
            return line[:500]
    return type(exc).__name__
