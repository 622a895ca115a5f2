"""Object storage: URIs (`s3://`, `file://`, plain paths) resolved to a store, bucket and key.

With no S3 endpoint configured, `s3://BUCKET/KEY` is the file `<home>/s3/BUCKET/KEY`, so
definitions written for S3 run unchanged on one machine.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from tailrace.errors import NotFoundError, StorageError
from tailrace.storage.abc import ObjectInfo, ObjectStore
from tailrace.storage.local import LocalStore
from tailrace.storage.tiered import TieredLocalStore

__all__ = ["Location", "ObjectInfo", "ObjectStore", "Storage"]


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

    def __init__(self, *, home: Path, s3: ObjectStore | None = None) -> None:
        self.home = home
        self.embedded_s3 = s3 is None
        self.s3: ObjectStore = s3 if s3 is not None else TieredLocalStore(home / "s3")
        self.files = LocalStore(Path("/"))

    def resolve(self, uri: str) -> Location:
        if not uri:
            raise StorageError("empty storage URI")
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme in ("s3", "s3n", "s3a"):
            if not parsed.netloc:
                raise StorageError(f"{uri!r}: an s3 URI needs a bucket (s3://BUCKET/KEY)")
            return Location(self.s3, parsed.netloc, unquote(parsed.path.lstrip("/")), uri)
        if scheme == "file":
            path = Path(unquote(parsed.path)).resolve()
            return Location(self.files, "", path.as_posix().lstrip("/"), uri)
        if scheme and len(scheme) > 1:
            raise StorageError(f"{uri!r}: unsupported scheme '{scheme}' (use s3://, file:// or a path)")
        path = Path(uri).expanduser().resolve()
        return Location(self.files, "", path.as_posix().lstrip("/"), uri)

    # --- conveniences over Location -------------------------------------------------------

    def read_bytes(self, uri: str) -> bytes:
        loc = self.resolve(uri)
        return loc.store.get(loc.bucket, loc.key)

    def write_bytes(self, uri: str, data: bytes) -> None:
        loc = self.resolve(uri)
        loc.store.put(loc.bucket, loc.key, data)

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
                yield from io.BufferedReader(fh) if not isinstance(fh, io.BufferedReader) else fh
        if not found:
            raise NotFoundError(f"nothing at {uri}")

    def commit_directory(self, uri: str, staged: Path) -> None:
        loc = self.resolve(uri)
        loc.store.commit_directory(loc.bucket, loc.key, staged)
