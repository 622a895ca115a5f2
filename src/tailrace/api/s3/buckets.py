"""Who owns which bucket: `s3_buckets` on the metadata database.

Ownership itself is the store's (tailrace.storage.buckets: the owner whose first write made a
bucket, and the owners granted it), so a bucket is the same owner's through the S3 API and
through pipelines. This table keeps only what S3 shows besides (the creation date). A bucket
that nobody claimed belongs to the default owner. Deleting a bucket keeps its owner: its name
cannot be taken over by another owner.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from tailrace.api.s3.xml import S3Error
from tailrace.state.engine import create_tables
from tailrace.storage.buckets import BucketRegistry

DEFAULT_OWNER = "default"
_meta = sa.MetaData()
s3_buckets = sa.Table(
    "s3_buckets",
    _meta,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket_name(name: str) -> None:
    if not _NAME.match(name) or ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        raise S3Error(
            "InvalidBucketName",
            f"bucket name {name!r}: 3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit",
            400,
            name,
        )


class Buckets:
    def __init__(self, engine: sa.Engine, *, registry: BucketRegistry | None = None) -> None:
        self.engine = engine
        self.registry = registry
        create_tables(_meta, engine)
        self._owners: dict[str, str] = {}
        """Owners seen, so that a request costs no database round trip: a bucket never changes
        owner; forget() drops the entry."""

    def owner_of(self, bucket: str) -> str | None:
        if self.registry is not None:
            found = self.registry.owner_of(bucket)  # cached there once seen
            if found is not None:
                return found
        if bucket in self._owners:
            return self._owners[bucket]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(s3_buckets.c.owner).where(s3_buckets.c.bucket == bucket)).first()
        if row is not None:
            self._owners[bucket] = row[0]
        return row[0] if row else None

    def create(self, bucket: str, owner: str) -> bool:
        """False when the bucket is already registered (or owned by someone else)."""
        if self.registry is not None and self.registry.claim(bucket, owner) != owner:
            return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    s3_buckets.insert().values(bucket=bucket, owner=owner, created_at=datetime.now(UTC))
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def forget(self, bucket: str) -> None:
        self._owners.pop(bucket, None)
        with self.engine.begin() as conn:
            conn.execute(s3_buckets.delete().where(s3_buckets.c.bucket == bucket))

    def created_at(self, bucket: str) -> datetime | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(s3_buckets.c.created_at).where(s3_buckets.c.bucket == bucket)
            ).first()
        return row[0] if row else None

    def bucket_owner_check(self, owner: str, bucket: str) -> None:
        """Raise AccessDenied unless `owner` owns `bucket` (an unregistered one is the default owner's)."""
        if (self.owner_of(bucket) or DEFAULT_OWNER) == owner:
            return
        # Grants are read each time (a revoke takes effect at once), and only for non-owners.
        granted = self.registry is not None and owner in self.registry.grantees(bucket)
        if not granted:
            raise S3Error("AccessDenied", "Access Denied", 403, bucket)
