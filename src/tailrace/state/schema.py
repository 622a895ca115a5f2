"""Tables of the state store (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are stored as naive UTC and read back UTC-aware; JSON is stored as text. Indexes that
serve due work are partial (they leave out finished rows), so scheduler queries stay as cheap
with 100,000 finished instances as with none. Every table is prefixed `tr_` because the
database is shared with other components (the Hive metastore's `hive_*` tables).

This module is the current shape. A change here needs a new migration in migrations.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database (sortable and comparable on both)."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store takes UTC-aware times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a SQLite value written outside SQLAlchemy
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        fallback = super().result_processor(dialect, coltype)

        def aware(value: Any) -> datetime | None:
            # SQLite keeps the text SQLAlchemy wrote (2024-01-31 00:00:00.000000); one parse
            # straight to an aware value costs a sixth of parse-then-replace, and reads of
            # thousands of instances do ten of these per row.
            if value.__class__ is str:
                try:
                    return datetime.fromisoformat(value + "+00:00")
                except ValueError:
                    pass
            return fallback(value) if fallback is not None else self.process_result_value(value, dialect)

        return aware


def dp_text(value: Any) -> str | None:
    """A UtcDateTime column's raw value (read without its type's processing) as the service shows
    times: YYYY-MM-DDTHH:MM:SS, UTC, cut to the second. SQLite holds the text SQLAlchemy wrote
    (2024-01-31 00:00:00.000000), rearranged here without parsing; other databases give datetimes."""
    if value is None:
        return None
    if value.__class__ is str:
        if len(value) >= 19 and value[10] == " " and (len(value) == 19 or value[19] == "."):
            return f"{value[:10]}T{value[11:19]}"
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return str(value.isoformat(timespec="seconds")[:19])


class SafeText(sa.types.TypeDecorator[str]):
    """Free text from outside (a command's stderr in an error message, a stack trace): stored on
    every backend whatever it holds. PostgreSQL text cannot hold NUL and no driver takes lone
    surrogates, so those become U+FFFD instead of failing the transaction that records the
    attempt's end."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
        return value


class JsonText(sa.types.TypeDecorator[Any]):
    """JSON kept as text (orjson): the store never queries inside it."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return orjson.dumps(value, default=_json_default).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    if hasattr(value, "items"):  # MappingProxyType
        return dict(value.items())
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid
ID = sa.String(1024)

metadata = sa.MetaData()

schema_version = sa.Table(
    "tr_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

pipelines = sa.Table(
    "tr_pipelines",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("unique_id", sa.String(1024), nullable=False),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("tags", JsonText, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("latest_version", sa.Integer),
    sa.Column("active_version", sa.Integer),
    sa.Column("activated_at", UtcDateTime),
    sa.Column("start_override", UtcDateTime),
    sa.Column("windows_created", sa.Integer, nullable=False),
    sa.Column("next_window_at", UtcDateTime),
    sa.Column("last_activated_at", UtcDateTime),
    sa.Column("activation", sa.Integer, nullable=False),
    sa.Column("health_status", sa.String(16)),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("deactivated_at", UtcDateTime),
    sa.Column("latest_run_at", UtcDateTime),
    sa.UniqueConstraint("owner", "unique_id", name="uq_tr_pipelines_owner_unique_id"),
    sa.Index("ix_tr_pipelines_due", "state", "next_window_at"),
)

definitions = sa.Table(
    "tr_definitions",
    metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("wire", JsonText, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

components = sa.Table(
    "tr_components",
    metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("type", sa.String(128)),
    sa.Column("category", sa.String(32)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("fields", JsonText, nullable=False),
)

_WAITING = sa.text("status = 'WAITING_FOR_RUNNER'")

instances = sa.Table(
    "tr_instances",
    metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("id", ID, primary_key=True),
    sa.Column("component_id", ID, nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("window", sa.Integer, nullable=False),
    sa.Column("scheduled_start", UtcDateTime, nullable=False),
    sa.Column("scheduled_end", UtcDateTime, nullable=False),
    sa.Column("run_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("definition_version", sa.Integer, nullable=False),
    sa.Column("queue", sa.String(1100)),
    sa.Column("worker_group", sa.String(1024)),
    sa.Column("resource_id", ID),
    sa.Column("depends_on", JsonText, nullable=False),
    sa.Column("preconditions", JsonText, nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False),
    sa.Column("tries_left", sa.Integer, nullable=False),
    sa.Column("head_attempt", ID),
    sa.Column("ready_at", UtcDateTime),
    sa.Column("due_at", UtcDateTime),
    sa.Column("late_at", UtcDateTime),
    sa.Column("started_at", UtcDateTime),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("cascade_failed_on", ID),
    sa.Column("error_message", SafeText),
    sa.Column("reruns", sa.Integer, nullable=False),
    sa.Column("spec", JsonText, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Runners claim from here: only waiting rows are indexed.
    sa.Index(
        "ix_tr_instances_claim",
        "queue",
        "scheduled_start",
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    ),
    # The scheduler's work list: only rows with something pending are indexed.
    sa.Index(
        "ix_tr_instances_due",
        "due_at",
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    ),
    sa.Index("ix_tr_instances_status", "pipeline_id", "status", "component_id", "scheduled_start"),
    sa.Index("ix_tr_instances_ended", "pipeline_id", "ended_at"),
    # Instances created per owner per hour (the [limits] instances_per_hour check).
    sa.Index("ix_tr_instances_created", "pipeline_id", "created_at"),
)

instance_deps = sa.Table(
    "tr_instance_deps",
    metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("instance_id", ID, primary_key=True),
    sa.Column("depends_on", ID, primary_key=True),
    sa.Index("ix_tr_instance_deps_reverse", "pipeline_id", "depends_on"),
)

_RUNNING = sa.text("status = 'RUNNING'")

attempts = sa.Table(
    "tr_attempts",
    metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("id", ID, primary_key=True),
    sa.Column("instance_id", ID, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("task_id", sa.String(256), nullable=False, unique=True),
    sa.Column("queue", sa.String(1100)),
    sa.Column("runner_id", sa.String(1024)),
    sa.Column("hostname", sa.String(1024)),
    sa.Column("lease_expires_at", UtcDateTime),
    sa.Column("heartbeat_at", UtcDateTime),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("error_id", sa.String(1024)),
    sa.Column("error_message", SafeText),
    sa.Column("error_stack_trace", SafeText),
    sa.Column("log_location", sa.Text),
    sa.Column("cancel_reason", sa.String(256)),
    sa.Column("progress", JsonText, nullable=False),
    sa.Index("ix_tr_attempts_instance", "pipeline_id", "instance_id", "number"),
    sa.Index("ix_tr_attempts_lease", "lease_expires_at", sqlite_where=_RUNNING, postgresql_where=_RUNNING),
)

events = sa.Table(
    "tr_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("pipeline_id", sa.String(64)),
    sa.Column("object_id", ID),
    sa.Column("payload", JsonText, nullable=False),
    sa.Column("owner", sa.String(256)),  # v2
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # v2: the payload's schema version
    sa.Index("ix_tr_events_pipeline", "pipeline_id", "id"),
)

cursors = sa.Table(  # v2: durable consumer cursors
    "tr_cursors",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("event_id", BigId, nullable=False),
    sa.Column("position", sa.String(256), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

access_keys = sa.Table(
    "tr_access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(128), primary_key=True),
    sa.Column("secret_access_key", sa.String(256), nullable=False),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

leases = sa.Table(
    "tr_leases",
    metadata,
    sa.Column("name", sa.String(1100), primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

task_runners = sa.Table(
    "tr_task_runners",
    metadata,
    sa.Column("runner_id", sa.String(1024), primary_key=True),
    sa.Column("worker_group", sa.String(1024)),
    sa.Column("hostname", sa.String(1024)),
    sa.Column("heartbeat_at", UtcDateTime, nullable=False),
    sa.Column("terminate", sa.Boolean, nullable=False),
)

# v4: the console's local users and sessions (tailrace.console). Sessions live here, not in a
# process, so any console process behind a load balancer serves any request.
console_users = sa.Table(
    "tr_console_users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(256)),  # None: an admin who sees every owner
    sa.Column("created_at", UtcDateTime, nullable=False),
)

console_sessions = sa.Table(
    "tr_console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the cookie value
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(256)),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
)

console_login_failures = sa.Table(
    "tr_console_login_failures",
    metadata,
    # sha256 of "name:NAME", "key:ID" or "client:ADDRESS": a password typed into the name field
    # is never stored.
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_at", UtcDateTime, nullable=False, index=True),
    sa.Column("blocked_until", UtcDateTime),
)
