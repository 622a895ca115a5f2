"""Object storage: URIs (`s3://`, `file://`, plain paths) resolved to a store, bucket and key.

With no S3 endpoint configured, `s3://BUCKET/KEY` is the file `<home>/s3/BUCKET/KEY`, so
definitions written for S3 run unchanged on one machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from tailrace.errors import NotFoundError, StorageError
from tailrace.storage.abc import ObjectInfo, ObjectStore
from tailrace.storage.buckets import BucketRegistry, MemoryBucketRegistry
from tailrace.storage.keys import AccessDeniedError, UnsafeKeyError, check_bucket, check_key, check_local_path
from tailrace.storage.local import LocalStore
from tailrace.storage.tiered import TieredLocalStore

__all__ = [
    "DEFAULT_OWNER",
    "AccessDeniedError",
    "BucketRegistry",
    "Location",
    "ObjectInfo",
    "ObjectStore",
    "OwnerStorage",
    "Storage",
    "UnsafeKeyError",
]


@dataclass(frozen=True)
class Location:
    """A resolved URI: which store, which bucket, which key (no leading '/')."""

    store: ObjectStore
    bucket: str
    key: str
    uri: str

    def child(self, name: str) -> Location:
        key = self.key.rstrip("/") + "/" + name if self.key else name
        return Location(self.store, self.bucket, key, self.uri.rstrip("/") + "/" + name)

    @property
    def local_path(self) -> Path | None:
        return self.store.local_path(self.bucket, self.key)


class Storage:
    """The facade every other layer uses; built once by services.py."""

    def __init__(
        self,
        *,
        home: Path,
        s3: ObjectStore | None = None,
        buckets: BucketRegistry | None = None,
        allowed_local_dirs: tuple[Path, ...] = (),
    ) -> None:
        self.home = home
        self.embedded_s3 = s3 is None
        self.s3: ObjectStore = s3 if s3 is not None else TieredLocalStore(home / "s3")
        self.files = LocalStore(Path("/"))
        self.buckets: BucketRegistry = buckets if buckets is not None else MemoryBucketRegistry()
        self.allowed_local_dirs = tuple(allowed_local_dirs)

    @property
    def warehouse(self) -> Path:
        """Where managed Hive tables of this view live (a local directory)."""
        return (self.home / "warehouse").resolve()

    def for_owner(self, owner: str) -> OwnerStorage:
        """The view an owner's attempts get: its buckets only, no local paths but allowed ones."""
        return OwnerStorage(self, owner)

    def resolve(self, uri: str) -> Location:
        if not uri:
            raise StorageError("empty storage URI")
        if "\x00" in uri:
            raise UnsafeKeyError(f"storage URI {uri[:200]!r} is refused: it contains NUL")
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme in ("s3", "s3n", "s3a"):
            if not parsed.netloc:
                raise StorageError(f"{uri!r}: an s3 URI needs a bucket (s3://BUCKET/KEY)")
            if parsed.query or parsed.fragment:
                raise UnsafeKeyError(f"storage URI {uri!r} is refused: '?' and '#' have no meaning here")
            bucket = check_bucket(unquote(parsed.netloc), uri=uri)
            key = check_key(unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path), uri=uri)
            self._check_bucket(bucket, uri)
            return Location(self.s3, bucket, key, uri)
        if scheme == "file":
            if parsed.query or parsed.fragment or parsed.netloc not in ("", "localhost"):
                raise UnsafeKeyError(f"file URI {uri!r} is refused: only file:///absolute/path is understood")
            path = self._local(unquote(parsed.path), uri)
            return Location(self.files, "", path.as_posix().lstrip("/"), uri)
        if scheme and len(scheme) > 1:
            raise StorageError(f"{uri!r}: unsupported scheme '{scheme}' (use s3://, file:// or a path)")
        path = self._local(uri, uri)
        return Location(self.files, "", path.as_posix().lstrip("/"), uri)

    # --- access rules (the unrestricted view: the server itself and single-user commands) ---

    def _check_bucket(self, bucket: str, uri: str) -> None:
        """Raise AccessDeniedError when this view may not use the bucket."""

    def _local(self, text: str, uri: str) -> Path:
        if "\x00" in text:
            raise UnsafeKeyError(f"path {uri[:200]!r} is refused: it contains NUL")
        return Path(text).expanduser().resolve()

    # --- conveniences over Location -------------------------------------------------------

    def read_bytes(self, uri: str) -> bytes:
        loc = self.resolve(uri)
        return loc.store.get(loc.bucket, loc.key)

    def write_bytes(self, uri: str, data: bytes) -> None:
        loc = self.resolve(uri)
        loc.store.put(loc.bucket, loc.key, data)

    def write_file(self, uri: str, path: Path) -> None:
        """Upload a local file, streamed (memory does not grow with its size)."""
        loc = self.resolve(uri)
        loc.store.put(loc.bucket, loc.key, path)

    def read_range(self, uri: str, offset: int, length: int) -> tuple[bytes, int]:
        """(at most `length` bytes from `offset`, the object's size): a window on an object of
        any size. :raises NotFoundError: if it does not exist."""
        loc = self.resolve(uri)
        info = loc.store.head(loc.bucket, loc.key)
        if info is None:
            raise NotFoundError(f"nothing at {uri}")
        if offset >= info.size or length <= 0:
            return b"", info.size
        return loc.store.read_range(loc.bucket, loc.key, offset, length), info.size

    def exists(self, uri: str) -> bool:
        loc = self.resolve(uri)
        if loc.store.head(loc.bucket, loc.key) is not None:
            return True
        return any(True for _ in self.list_files(uri))

    def list_files(self, uri: str) -> Iterator[ObjectInfo]:
        """Files of a directory URI (recursive, hidden files skipped), or the file itself."""
        loc = self.resolve(uri)
        head = loc.store.head(loc.bucket, loc.key) if loc.key and not uri.endswith("/") else None
        if head is not None:
            yield head
            return
        prefix = loc.key.rstrip("/") + "/" if loc.key else ""
        yield from loc.store.list(loc.bucket, prefix)

    def open_text_stream(self, info: ObjectInfo, store: ObjectStore) -> BinaryIO:
        raw = store.open_read(info.bucket, info.key)
        if info.key.endswith(".gz"):
            return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
        return raw

    def iter_lines(self, uri: str) -> Iterator[bytes]:
        """Every line of every file under uri, in file-name order, .gz decompressed."""
        loc = self.resolve(uri)
        found = False
        for info in self.list_files(uri):
            found = True
            with self.open_text_stream(info, loc.store) as fh:
                # typeshed wants a RawIOBase; any binary stream with readinto() works here.
                yield from io.BufferedReader(fh) if not isinstance(fh, io.BufferedReader) else fh  # type: ignore[type-var]
        if not found:
            raise NotFoundError(f"nothing at {uri}")

    def commit_directory(self, uri: str, staged: Path) -> None:
        loc = self.resolve(uri)
        loc.store.commit_directory(loc.bucket, loc.key, staged)


class OwnerStorage(Storage):
    """One owner's view of the store: s3 buckets it owns (claimed on first use) or was granted,
    and local paths only under the server's allowed_local_dirs or the owner's warehouse."""

    def __init__(self, base: Storage, owner: str) -> None:
        super().__init__(
            home=base.home,
            s3=None if base.embedded_s3 else base.s3,
            buckets=base.buckets,
            allowed_local_dirs=base.allowed_local_dirs,
        )
        self.s3 = base.s3
        self.files = base.files
        self.owner = owner
        self.base = base

    @property
    def warehouse(self) -> Path:
        # The first owner keeps the single-user layout; the others get a directory apart.
        if self.owner == DEFAULT_OWNER:
            return self.base.warehouse
        # A digest, not the name: owners may be '..' or differ only in case.
        tag = hashlib.sha256(self.owner.encode()).hexdigest()[:24]
        return (self.home / "warehouse-owners" / tag).resolve()

    def for_owner(self, owner: str) -> OwnerStorage:
        if owner != self.owner:
            raise AccessDeniedError("an owner's storage view cannot be widened to another owner")
        return self

    def list_files(self, uri: str) -> Iterator[ObjectInfo]:
        """As Storage.list_files; in a local directory, every file found must itself resolve
        under an allowed directory (a link planted in an allowed directory is refused)."""
        loc = self.resolve(uri)
        for info in super().list_files(uri):
            if loc.store is self.files:
                self._local("/" + info.key, f"{uri} (file /{info.key})")
            yield info

    def reachable_buckets(self) -> list[str]:
        """Buckets this owner owns or was granted, now."""
        return [bucket for bucket, _, _ in self.buckets.list(self.owner)]

    def _check_bucket(self, bucket: str, uri: str) -> None:
        if not self.buckets.may_use(bucket, self.owner):
            raise AccessDeniedError(
                f"access denied to {uri!r}: bucket '{bucket}' belongs to another owner "
                f"(its owner can run `tailrace buckets grant {bucket} {self.owner}`)"
            )

    def _local(self, text: str, uri: str) -> Path:
        return check_local_path(text, (*self.allowed_local_dirs, self.warehouse), what="local path")


DEFAULT_OWNER = "default"
"""The owner of single-user installations (api.keys.DEFAULT_OWNER names the same)."""
