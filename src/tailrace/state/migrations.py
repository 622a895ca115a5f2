"""Versioned schema migrations: `tr_schema_version` records each step applied, in order.

A migration is a function of an open connection; all pending steps run in one transaction
under a lock (SQLite's write lock, a PostgreSQL advisory lock), so processes that start
together migrate once. Add a step to MIGRATIONS for every change of schema.py; never edit a
step that has shipped (when schema.py changes, `_v1` must first get its own frozen copy of the
tables it created).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from tailrace.errors import ConfigError
from tailrace.state import schema

MIGRATION_LOCK = 0x7A11_0001  # pg_advisory_xact_lock key of the state store's migrations


@dataclass(frozen=True, kw_only=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _v1(conn: sa.Connection) -> None:
    tables = [t for t in schema.metadata.sorted_tables if t is not schema.schema_version]
    schema.metadata.create_all(conn, tables=tables)


def _v2(conn: sa.Connection) -> None:
    # _v1 creates the tables of the current schema.py, so on a new database these are already
    # there: add only what is missing.
    inspector = sa.inspect(conn)
    have = {c["name"] for c in inspector.get_columns(schema.events.name)}
    if "owner" not in have:
        conn.execute(sa.text("ALTER TABLE tr_events ADD COLUMN owner VARCHAR(256)"))
        conn.execute(
            sa.text(
                "UPDATE tr_events SET owner = (SELECT p.owner FROM tr_pipelines p WHERE p.id = tr_events.pipeline_id)"
            )
        )
    if "version" not in have:
        conn.execute(sa.text("ALTER TABLE tr_events ADD COLUMN version INTEGER NOT NULL DEFAULT 1"))
    schema.cursors.create(conn, checkfirst=True)


def _v3(conn: sa.Connection) -> None:
    # checkfirst: _v1 builds from the current schema.py, so a new database has it already.
    index = next(i for i in schema.instances.indexes if i.name == "ix_tr_instances_created")
    index.create(conn, checkfirst=True)


def _v4(conn: sa.Connection) -> None:
    # checkfirst: _v1 builds from the current schema.py, so a new database has them already.
    schema.console_users.create(conn, checkfirst=True)
    schema.console_sessions.create(conn, checkfirst=True)


def _v5(conn: sa.Connection) -> None:
    # checkfirst: _v1 builds from the current schema.py, so a new database has it already.
    schema.console_login_failures.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="pipelines, definitions, components, instances, attempts, events, keys",
        apply=_v1,
    ),
    Migration(version=2, description="event outbox owner and version; consumer cursors", apply=_v2),
    Migration(version=3, description="index of instances by creation time (per-owner limits)", apply=_v3),
    Migration(version=4, description="console users and sessions", apply=_v4),
    Migration(version=5, description="console sign-in failures (rate limiting)", apply=_v5),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(engine: sa.Engine, *, now: datetime) -> int:
    """Bring the database to LATEST; returns the version it is at.

    :raises ConfigError: if the database was migrated by a newer tailrace.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > LATEST:
            raise ConfigError(
                f"the metadata database is at schema version {version}, newer than this tailrace "
                f"understands ({LATEST}); upgrade tailrace"
            )
        for step in MIGRATIONS:
            if step.version <= version:
                continue
            step.apply(conn)
            conn.execute(
                sa.insert(schema.schema_version).values(
                    version=step.version, description=step.description, applied_at=now
                )
            )
            version = step.version
        return version
