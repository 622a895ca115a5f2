"""Table files on the object store: what DuckDB reads, and how results are committed.

Local stores (the embedded `s3://` directory, `file://`, plain paths) are read in place. A
remote S3 endpoint is read by downloading the table's files to a staging directory first
(DuckDB's httpfs extension cannot be installed offline). Writes are staged locally and then
committed through Storage: INSERT OVERWRITE swaps the whole directory, INSERT INTO adds a
file named as Hive names copies (`000000_0_copy_1`).
"""

from __future__ import annotations

import builtins
import bz2
import hashlib
import io
import os
import shutil
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from isal import igzip, igzip_lib

from tailrace.engines.metastore import PartitionSpec, TableSpec, escape_path_value, unescape_path_value
from tailrace.errors import NotFoundError, TailraceError
from tailrace.storage import ObjectInfo, Storage
from tailrace.storage.local import is_hidden

# isal's error for a corrupt .gz (its stubs declare it as an instance, so mypy needs the cast)
_IsalError = cast(type[Exception], igzip_lib.IsalError)


@dataclass
class Listing:
    files: list[str]
    exists: bool


class TableFiles:
    def __init__(
        self,
        storage: Storage,
        work_dir: Path,
        readable: tuple[Path, ...] | None = None,
        *,
        decompress_gzip: bool = False,
        threads: int | None = None,
    ) -> None:
        self.storage = storage
        self.work_dir = work_dir
        self.readable = readable
        """When set (a sandboxed engine), DuckDB may read only under these directories: files
        elsewhere in the store are copied to the work directory first."""
        self.decompress_gzip = decompress_gzip
        """DuckDB reads .gz inputs one file at a time on one thread; decompressing them first
        (isal, one thread per file) lets it split and parse the text on every thread."""
        self.threads = threads or os.cpu_count() or 1
        self.originals: dict[str, str] = {}
        """Decompressed copy -> the input file it came from (for messages)."""
        self._downloaded: dict[tuple[str, str, int, str], Path] = {}

    def list(self, location: str) -> Listing:
        """Local paths of every (non-hidden, non-empty) file under location, in name order."""
        loc = self.storage.resolve(location)
        local = loc.local_path
        if local is not None and self._direct(local):
            if local.is_file():
                return Listing([str(local)], True)
            if not local.is_dir():
                return Listing([], False)
            paths: list[Path] = []
            for info in self.storage.list_files(location.rstrip("/") + "/"):
                path = loc.store.local_path(info.bucket, info.key)
                if path is not None and info.size > 0:
                    paths.append(path)
            return Listing(self._all_readable(paths), True)
        infos = list(self.storage.list_files(location))
        if not infos:
            return Listing([], False)
        target = self.work_dir / "inputs" / hashlib.sha1(location.encode()).hexdigest()[:16]
        downloaded: list[Path] = []
        for info in infos:
            if info.key.endswith("/") or info.size == 0:
                continue  # folder markers and empty objects hold no rows
            rel = info.key[len(loc.key) :].lstrip("/") or info.key.rsplit("/", 1)[-1]
            cache_key = (info.bucket, info.key, info.size, info.modified.isoformat())
            path = self._downloaded.get(cache_key)
            if path is None or not path.exists():
                path = target / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                loc.store.download(info.bucket, info.key, path)
                self._downloaded[cache_key] = path
            downloaded.append(path)
        return Listing(self._all_readable(downloaded), True)

    def _direct(self, local: Path) -> bool:
        if self.readable is None:
            return True
        resolved = local.resolve()
        return any(resolved.is_relative_to(root) for root in self.readable)

    def _all_readable(self, paths: builtins.list[Path]) -> builtins.list[str]:
        """_readable of each path, in order; several files are decompressed in parallel."""
        if len(paths) > 1 and self.threads > 1 and any(self._opener(p) for p in paths):
            with ThreadPoolExecutor(min(self.threads, len(paths)), thread_name_prefix="decompress") as pool:
                return [str(p) for p in pool.map(self._readable, paths)]
        return [str(self._readable(p)) for p in paths]

    def _opener(self, path: Path) -> Callable[[Path], Any] | None:
        if path.suffix == ".gz" and self.decompress_gzip:
            return igzip.open  # isal's inflate releases the GIL: files decompress side by side
        openers: dict[str, Callable[[Path], Any]] = {".bz2": bz2.open, ".deflate": _inflate}
        return openers.get(path.suffix)

    def _readable(self, path: Path) -> Path:
        """DuckDB reads plain, .gz and .zst files; Hadoop's .bz2 and .deflate codecs (and .gz
        with decompress_gzip) are decompressed to the staging directory first (once per file
        version)."""
        opener = self._opener(path)
        if opener is None:
            return path
        st = path.stat()
        key = hashlib.sha1(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        out = self.work_dir / "decoded" / key / path.stem
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".part")
            try:
                with opener(path) as src, tmp.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (OSError, EOFError, zlib.error, _IsalError) as exc:
                tmp.unlink(missing_ok=True)
                raise TailraceError(f"input file {path.name} cannot be decompressed: {exc}") from None
            tmp.replace(out)
        self.originals[str(out)] = str(path)
        return out

    def forget(self, location: str) -> None:
        """Drop cached downloads under a location that was just written."""
        loc = self.storage.resolve(location)
        prefix = loc.key.rstrip("/")
        for key in [k for k in self._downloaded if k[0] == loc.bucket and k[1].startswith(prefix)]:
            del self._downloaded[key]

    def staging_dir(self) -> Path:
        path = self.work_dir / "out" / uuid.uuid4().hex[:12]
        path.mkdir(parents=True)
        return path

    def overwrite(self, location: str, staged: Path) -> None:
        """Replace everything under location by the staged directory's files, atomically."""
        self.storage.commit_directory(location, staged)
        self.forget(location)

    def append(self, location: str, staged_file: Path) -> str:
        """Add staged_file under location without touching the files there; returns its name."""
        loc = self.storage.resolve(location)
        existing = {info.key.rsplit("/", 1)[-1] for info in self._safe_list(location)}
        stem, dot, ext = staged_file.name.partition(".")
        suffix = f".{ext}" if dot else ""
        name = staged_file.name
        n = 0
        while name in existing:
            n += 1
            name = f"{stem}_copy_{n}{suffix}"
        child = loc.child(name)
        child.store.put(child.bucket, child.key, staged_file)
        self.forget(location)
        return name

    def _safe_list(self, location: str) -> builtins.list[ObjectInfo]:
        try:
            return list(self.storage.list_files(location.rstrip("/") + "/"))
        except NotFoundError:
            return []

    def move(self, source: str, target: str) -> None:
        """Everything under source to target (relative names kept; target replaced atomically),
        then source deleted: a managed table renamed."""
        src = self.storage.resolve(source.rstrip("/") + "/")
        prefix = src.key.rstrip("/") + "/" if src.key else ""
        staged = self.staging_dir()
        for info in self._safe_list(source):
            rel = info.key[len(prefix) :] if info.key.startswith(prefix) else ""
            if not rel or rel.startswith("/") or ".." in rel.split("/"):
                continue  # never outside the staging directory
            dest = staged / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            src.store.download(info.bucket, info.key, dest)
        self.overwrite(target, staged)
        self.delete_all(source)

    def delete_all(self, location: str) -> None:
        loc = self.storage.resolve(location)
        for info in self._safe_list(location):
            loc.store.delete(info.bucket, info.key)
        local = loc.local_path
        if local is not None and local.is_dir():
            shutil.rmtree(local, ignore_errors=True)

    def discover_partitions(self, spec: TableSpec) -> builtins.list[PartitionSpec]:
        """Partition directories `k1=v1/k2=v2/` under the table location (MSCK REPAIR TABLE)."""
        names = [c for c, _ in spec.partitioned_by]
        root = spec.location.rstrip("/")
        loc = self.storage.resolve(root)
        base = loc.key.rstrip("/")
        found: dict[tuple[tuple[str, str], ...], str] = {}
        for info in self._safe_list(root):
            rel = info.key[len(base) :].lstrip("/") if base else info.key
            parts = rel.split("/")[:-1]
            if len(parts) < len(names) or any(is_hidden(p) for p in parts[: len(names)]):
                continue
            values: list[tuple[str, str]] = []
            for name, part in zip(names, parts, strict=False):
                key, eq, value = part.partition("=")
                if not eq or key.lower() != name:
                    break
                values.append((name, unescape_path_value(value)))
            if len(values) == len(names):
                found.setdefault(tuple(values), root + "/" + "/".join(parts[: len(names)]))
        return [PartitionSpec(values=v, location=found[v]) for v in sorted(found)]


def _inflate(path: Path) -> io.BytesIO:
    """Hadoop's DefaultCodec (.deflate) is a zlib stream."""
    return io.BytesIO(zlib.decompress(path.read_bytes()))


def partition_location(spec: TableSpec, values: tuple[tuple[str, str], ...]) -> str:
    return spec.location.rstrip("/") + "/" + "/".join(f"{k}={escape_path_value(v)}" for k, v in values)
