"""The object-store port: opaque bytes under (bucket, key). Callers own the formats."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from tailrace.errors import StorageError


@dataclass(frozen=True, kw_only=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    modified: datetime
    storage_class: str = "STANDARD"


class ObjectStore(ABC):
    """A flat namespace of objects. Keys use '/' as the separator; directories are prefixes.

    Every method raises StorageError (never a backend exception) on failure, and
    NotFoundError when a single named object is missing.
    """

    @abstractmethod
    def get(self, bucket: str, key: str) -> bytes:
        """The whole object. :raises NotFoundError: if it does not exist."""

    @abstractmethod
    def open_read(self, bucket: str, key: str) -> BinaryIO:
        """A readable binary stream of the object. :raises NotFoundError: if it does not exist."""

    @abstractmethod
    def put(self, bucket: str, key: str, data: bytes | BinaryIO | Path) -> None:
        """Create or replace the object atomically: readers see the old or the new bytes."""

    @abstractmethod
    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """Metadata of one object, or None when it does not exist."""

    @abstractmethod
    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix, in key order (recursive)."""

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove the object; missing objects are not an error."""

    def download(self, bucket: str, key: str, dest: Path) -> None:
        """Copy the object to the local file dest (written whole, then renamed into place).

        :raises NotFoundError: if it does not exist.
        """
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with self.open_read(bucket, key) as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            tmp.replace(dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot download {bucket}/{key} to {dest}: {exc}")

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The file behind the object when the store is a local directory, else None."""
        return None

    def unreadable_class(self, info: ObjectInfo) -> str | None:
        """The archive storage class that keeps this listed object from being read (GLACIER or
        DEEP_ARCHIVE, not restored), or None when a GET would succeed. Stores without archive
        classes never refuse a read."""
        return None

    def read_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        """At most `length` bytes from `offset` (fewer at the end), in memory bounded by
        `length` whatever the object's size. :raises NotFoundError: if it does not exist."""
        with self.open_read(bucket, key) as fh:
            if fh.seekable():
                fh.seek(offset)
            else:
                left = offset
                while left > 0 and (skipped := fh.read(min(left, 1 << 20))):
                    left -= len(skipped)
            return fh.read(length)

    def commit_directory(self, bucket: str, prefix: str, staged: Path) -> None:
        """Replace every object under prefix/ by the files of the local directory `staged`.

        The default uploads the new files and then deletes the old keys that were not replaced;
        backends that can swap atomically override it.
        """
        prefix = prefix.rstrip("/") + "/"
        old = {info.key for info in self.list(bucket, prefix)}
        new: set[str] = set()
        for path in sorted(p for p in staged.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(staged).as_posix()
            self.put(bucket, key, path)
            new.add(key)
        for key in sorted(old - new):
            self.delete(bucket, key)
