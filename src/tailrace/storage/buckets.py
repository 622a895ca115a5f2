"""Who owns which bucket, and who else was granted it. As on S3, a bucket belongs to the owner
whose first write (or `tailrace buckets create`) made it; others reach it only by a grant.

`storage_buckets` and `storage_bucket_grants` live in the metadata database, created
idempotently (like the metastore's `hive_` tables) so the state migrations can adopt them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from tailrace.state.engine import create_tables
from tailrace.storage.keys import check_bucket


class BucketRegistry(ABC):
    """Ownership of buckets. Owner names are opaque strings (the access keys' owners)."""

    @abstractmethod
    def owner_of(self, bucket: str) -> str | None:
        """The bucket's owner, or None when nobody has claimed it yet."""

    @abstractmethod
    def claim(self, bucket: str, owner: str) -> str:
        """Make `owner` the owner when the bucket is unclaimed; returns the owner either way."""

    @abstractmethod
    def grant(self, bucket: str, owner: str) -> None:
        """Let `owner` read and write a bucket it does not own (idempotent)."""

    @abstractmethod
    def revoke(self, bucket: str, owner: str) -> bool:
        """Withdraw a grant; False when there was none."""

    @abstractmethod
    def grantees(self, bucket: str) -> list[str]:
        """Owners granted the bucket, sorted."""

    @abstractmethod
    def list(self, owner: str | None = None) -> list[tuple[str, str, list[str]]]:
        """(bucket, owner, grantees) of every bucket (that `owner` owns or was granted), sorted."""

    def may_use(self, bucket: str, owner: str) -> bool:
        """True when `owner` owns the bucket (claiming it if unclaimed) or was granted it."""
        found = self.owner_of(bucket)
        if found is None:
            found = self.claim(bucket, owner)
        return found == owner or owner in self.grantees(bucket)


class MemoryBucketRegistry(BucketRegistry):
    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self._grants: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def owner_of(self, bucket: str) -> str | None:
        return self._owners.get(bucket)

    def claim(self, bucket: str, owner: str) -> str:
        check_bucket(bucket)
        with self._lock:
            return self._owners.setdefault(bucket, owner)

    def grant(self, bucket: str, owner: str) -> None:
        with self._lock:
            self._grants.setdefault(bucket, set()).add(owner)

    def revoke(self, bucket: str, owner: str) -> bool:
        with self._lock:
            had = owner in self._grants.get(bucket, set())
            self._grants.get(bucket, set()).discard(owner)
            return had

    def grantees(self, bucket: str) -> list[str]:
        return sorted(self._grants.get(bucket, set()))

    def list(self, owner: str | None = None) -> list[tuple[str, str, list[str]]]:
        rows = [(b, o, self.grantees(b)) for b, o in sorted(self._owners.items())]
        return [r for r in rows if owner is None or r[1] == owner or owner in r[2]]


_META = sa.MetaData()
_BUCKETS = sa.Table(
    "storage_buckets",
    _META,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
_GRANTS = sa.Table(
    "storage_bucket_grants",
    _META,
    sa.Column("bucket", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class SqlBucketRegistry(BucketRegistry):
    """On the metadata database (SQLite or PostgreSQL); owners are cached once seen (a bucket
    never changes owner), grants are read each time (a revoke takes effect at once)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_tables(_META, engine)
        self._owners: dict[str, str] = {}

    def owner_of(self, bucket: str) -> str | None:
        if bucket in self._owners:
            return self._owners[bucket]
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(_BUCKETS.c.owner).where(_BUCKETS.c.name == bucket)).scalar()
        if found is not None:
            self._owners[bucket] = found
        return found

    def claim(self, bucket: str, owner: str) -> str:
        check_bucket(bucket)
        try:
            with self.engine.begin() as conn:
                conn.execute(_BUCKETS.insert().values(name=bucket, owner=owner, created_at=datetime.now(UTC)))
        except sa.exc.IntegrityError:
            pass  # claimed by someone else at the same moment: theirs
        found = self.owner_of(bucket)
        assert found is not None
        return found

    def grant(self, bucket: str, owner: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    _GRANTS.insert().values(bucket=bucket, owner=owner, created_at=datetime.now(UTC))
                )
        except sa.exc.IntegrityError:
            pass

    def revoke(self, bucket: str, owner: str) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(
                _GRANTS.delete().where(_GRANTS.c.bucket == bucket, _GRANTS.c.owner == owner)
            ).rowcount
        return bool(n)

    def grantees(self, bucket: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_GRANTS.c.owner).where(_GRANTS.c.bucket == bucket).order_by(_GRANTS.c.owner)
            )
            return [r[0] for r in rows]

    def list(self, owner: str | None = None) -> list[tuple[str, str, list[str]]]:
        with self.engine.connect() as conn:
            owners = conn.execute(
                sa.select(_BUCKETS.c.name, _BUCKETS.c.owner).order_by(_BUCKETS.c.name)
            ).all()
            grants = conn.execute(sa.select(_GRANTS.c.bucket, _GRANTS.c.owner)).all()
        by_bucket: dict[str, list[str]] = {}
        for b, o in grants:
            by_bucket.setdefault(b, []).append(o)
        rows = [(b, o, sorted(by_bucket.get(b, []))) for b, o in owners]
        return [r for r in rows if owner is None or r[1] == owner or owner in r[2]]


class LazyBucketRegistry(BucketRegistry):
    """Builds the real registry on first use, so commands that never scope storage do not open
    the metadata database."""

    def __init__(self, factory: Callable[[], BucketRegistry]) -> None:
        self._factory = factory
        self._real: BucketRegistry | None = None
        self._lock = threading.Lock()

    @property
    def real(self) -> BucketRegistry:
        with self._lock:
            if self._real is None:
                self._real = self._factory()
            return self._real

    def owner_of(self, bucket: str) -> str | None:
        return self.real.owner_of(bucket)

    def claim(self, bucket: str, owner: str) -> str:
        return self.real.claim(bucket, owner)

    def grant(self, bucket: str, owner: str) -> None:
        self.real.grant(bucket, owner)

    def revoke(self, bucket: str, owner: str) -> bool:
        return self.real.revoke(bucket, owner)

    def grantees(self, bucket: str) -> list[str]:
        return self.real.grantees(bucket)

    def list(self, owner: str | None = None) -> list[tuple[str, str, list[str]]]:
        return self.real.list(owner)
