"""Where bucket lifecycle configurations live: `s3_bucket_lifecycle` on the metadata database.

On a real S3 endpoint the configuration lives on the bucket itself (S3 applies it); see
`put_on_s3`. The table is created idempotently, like the metastore's tables.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tailrace.lifecycle.rules import LifecycleConfiguration, LifecycleError, parse_configuration
from tailrace.lifecycle.wire import to_json
from tailrace.state.engine import create_tables

_meta = sa.MetaData()
bucket_lifecycle = sa.Table(
    "s3_bucket_lifecycle",
    _meta,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("configuration", sa.Text, nullable=False),
    sa.Column("minimum_object_size", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class LifecycleConfigs:
    """Bucket -> LifecycleConfiguration, stored as the JSON shape S3 prints."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_tables(_meta, engine)

    def put(self, bucket: str, cfg: LifecycleConfiguration) -> None:
        now = datetime.now(UTC)
        body = json.dumps(to_json(cfg))
        size = cfg.transition_default_minimum_object_size
        with self.engine.begin() as conn:
            n = conn.execute(
                bucket_lifecycle.update()
                .where(bucket_lifecycle.c.bucket == bucket)
                .values(configuration=body, minimum_object_size=size, updated_at=now)
            ).rowcount
            if not n:
                conn.execute(
                    bucket_lifecycle.insert().values(
                        bucket=bucket, configuration=body, minimum_object_size=size, updated_at=now
                    )
                )

    def get(self, bucket: str) -> LifecycleConfiguration | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(bucket_lifecycle.c.configuration, bucket_lifecycle.c.minimum_object_size).where(
                    bucket_lifecycle.c.bucket == bucket
                )
            ).first()
        if row is None:
            return None
        return parse_configuration(json.loads(row[0]), minimum_object_size=row[1])

    def delete(self, bucket: str) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(bucket_lifecycle.delete().where(bucket_lifecycle.c.bucket == bucket)).rowcount
            )

    def all(self) -> dict[str, LifecycleConfiguration]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    bucket_lifecycle.c.bucket,
                    bucket_lifecycle.c.configuration,
                    bucket_lifecycle.c.minimum_object_size,
                ).order_by(bucket_lifecycle.c.bucket)
            ).all()
        return {r[0]: parse_configuration(json.loads(r[1]), minimum_object_size=r[2]) for r in rows}


def put_on_s3(client: Any, bucket: str, cfg: LifecycleConfiguration) -> None:
    """On a real S3 endpoint the bucket carries the configuration and S3 applies it."""
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration=to_json(cfg),
            TransitionDefaultMinimumObjectSize=cfg.transition_default_minimum_object_size,
        )
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code:
            raise LifecycleError(code, f"S3 refused the configuration of bucket {bucket}: {exc}")
        raise


def get_from_s3(client: Any, bucket: str) -> LifecycleConfiguration | None:
    try:
        out = client.get_bucket_lifecycle_configuration(Bucket=bucket)
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return None
        raise
    return parse_configuration(
        {"Rules": out["Rules"]}, minimum_object_size=out.get("TransitionDefaultMinimumObjectSize")
    )
