"""SQLAlchemy engines for the state store: SQLite (WAL, one writer at a time) and PostgreSQL.

Several processes share one SQLite file safely: WAL lets readers run while one writer
writes; every write transaction starts with BEGIN IMMEDIATE, so it takes the write lock up
front and waits for it (busy_timeout) instead of failing later on a lock upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from tailrace.errors import ConfigError, TailraceError

READONLY = "tailrace_readonly"
"""Execution option: on SQLite, begin with a plain (deferred) BEGIN instead of BEGIN IMMEDIATE."""

BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str | URL, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """An engine for a sqlite:// or postgresql:// URL (postgresql:// uses psycopg 3).

    :raises ConfigError: for another kind of URL.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database URL {str(url)!r} is not a URL: {exc}")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No pre-ping (a round trip per transaction): a connection lost with its server is
        # invalidated on the error, and the loops that use the store retry.
        return sa.create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, echo=echo)
    raise ConfigError(
        f"database URL {parsed.render_as_string(hide_password=True)!r}: expected sqlite:///PATH or "
        "postgresql://USER@HOST/DB"
    )


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database or ""
    memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own database
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.update(pool_size=20, max_overflow=20)
    engine = sa.create_engine(url, echo=echo, **kwargs)
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def busy_error(engine: Engine, exc: sa.exc.OperationalError) -> TailraceError | None:
    """A clear StoreBusy for SQLite's "database is locked" (the writer ahead of us held the
    lock past the busy timeout); None for any other operational error."""
    from tailrace.state.records import StoreBusy

    text = str(exc.orig or exc)
    if engine.dialect.name != "sqlite" or ("locked" not in text and "busy" not in text):
        return None
    return StoreBusy(
        f"the metadata database {engine.url.database} stayed locked by another process for more than "
        f"{BUSY_TIMEOUT_MS // 1000} s (one write at a time on SQLite); retry, or use PostgreSQL "
        "(TAILRACE_DATABASE_URL) for heavy concurrent use"
    )


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event issue BEGIN itself (the driver's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against process crashes (kill -9) in WAL mode; only a power loss can
        # drop the last transactions, never corrupt the file.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_begin(conn: sa.Connection) -> None:
    readonly = conn.get_execution_options().get(READONLY, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


CREATE_LOCK = 0x7A11_0002
"""pg_advisory_xact_lock key under which side tables are created (the migrations use ..._0001)."""


def create_tables(meta: sa.MetaData, engine: Engine) -> None:
    """`meta.create_all`, safe when several processes start together: PostgreSQL's CREATE TABLE
    races a concurrent one (DuplicateTable, or a unique violation in pg_type), so on PostgreSQL
    one process creates at a time; SQLite serialises writers itself."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
        meta.create_all(conn, checkfirst=True)
