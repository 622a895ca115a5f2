"""The notification tables on the metadata database (SQLite or PostgreSQL), created idempotently
on the shared engine; the `sns_`/`cw_` prefixes keep them apart from the state store's."""

from __future__ import annotations

import sqlalchemy as sa

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


def create_tables(engine: sa.Engine) -> None:
    meta.create_all(engine, checkfirst=True)
