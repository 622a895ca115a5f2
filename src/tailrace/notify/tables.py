"""The notification tables on the metadata database (SQLite or PostgreSQL), created idempotently
on the shared engine; the `sns_`/`cw_` prefixes keep them apart from the state store's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from tailrace.state.engine import READONLY
from tailrace.state.engine import create_tables as _create_tables

meta = sa.MetaData()

topics = sa.Table(
    "sns_topics",
    meta,
    sa.Column("arn", sa.String(400), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

subscriptions = sa.Table(
    "sns_subscriptions",
    meta,
    sa.Column("arn", sa.String(450), primary_key=True),
    sa.Column("topic_arn", sa.String(400), nullable=False, index=True),
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False),
    sa.Column("token", sa.String(256), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

deliveries = sa.Table(
    "sns_deliveries",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # Notification, SubscriptionConfirmation...
    sa.Column("subscription_arn", sa.String(450), nullable=False, index=True),
    sa.Column("topic_arn", sa.String(400), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON, the same on every try
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_sns_deliveries_due", "status", "next_at"),
)

metrics = sa.Table(
    "cw_metrics",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("namespace", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("dims_key", sa.Text, nullable=False),  # sorted [[name, value], ...] as JSON
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("last_put", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_cw_metrics_lookup", "owner", "namespace", "name"),
)

datapoints = sa.Table(
    "cw_datapoints",
    meta,
    sa.Column("metric_id", sa.Integer, primary_key=True),
    sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("sample_count", sa.Float, nullable=False),
    sa.Column("sum", sa.Float, nullable=False),
    sa.Column("minimum", sa.Float, nullable=False),
    sa.Column("maximum", sa.Float, nullable=False),
    sa.Column("samples", sa.Text, nullable=False),  # raw values (bounded) for percentiles
)

alarms = sa.Table(
    "cw_alarms",
    meta,
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # PutMetricAlarm's input, checked
    sa.Column("actions_enabled", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reason_data", sa.Text, nullable=True),
    sa.Column("state_updated", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state_transitioned", sa.DateTime(timezone=True), nullable=False),
    sa.Column("config_updated", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_eval_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
)

alarm_history = sa.Table(
    "cw_alarm_history",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("alarm_name", sa.String(255), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # ConfigurationUpdate, StateUpdate, Action
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_cw_alarm_history_alarm", "owner", "alarm_name", "at"),
)


def create_tables(engine: sa.Engine) -> None:
    _create_tables(meta, engine)


@contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads only: on SQLite it begins a deferred transaction, so readers never
    wait for (or hold) the write lock."""
    with engine.connect() as conn:
        conn.execution_options(**{READONLY: True})
        yield conn
