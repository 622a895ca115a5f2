"""Storage classes on the embedded store: an archive tier beside the hot directory.

Layout under the store's root (names starting with '.' are never buckets):

- `<root>/<bucket>/<key>`            the hot copy (STANDARD, and the readable IA-like classes)
- `<root>/.tiers/<bucket>/<key>.json` the object's class record; absent means STANDARD
- `<root>/.archive/<bucket>/<key>.gz` the compressed copy of an archived object (GLACIER, DEEP_ARCHIVE)
- `<root>/.restored/<bucket>/<key>`  a temporary readable copy made by a restore

The class record is the switch: writing it (atomically, by rename) is the moment an object
changes tier. An archive move writes the archive copy first, then the record, then deletes the hot
copy; `recover` finishes moves a crash interrupted. The record keeps the hot copy's size and
mtime, so a leftover hot copy is told apart from a newer PUT over the same key.
"""

from __future__ import annotations

import builtins
import functools
import gzip
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from tailrace.errors import NotFoundError, StorageError
from tailrace.storage.abc import ObjectInfo
from tailrace.storage.local import LocalStore, is_hidden
from tailrace.storage.tiers import (  # noqa: F401 (some re-exported: the store's public names)
    ALL_CLASSES,
    ARCHIVE_CLASSES,
    IO_THREADS,
    READABLE_CLASSES,
    ObjectStateError,
    TierRecord,
    abandoned_temp,
    as_storage_error,
    atomic_write,
    compress_into,
    drop_hot,
    restore_expiry,
    sync_filesystem,
    write_all,
)


class TieredLocalStore(LocalStore):
    """LocalStore with storage classes, an archive area and restores (the embedded S3)."""

    def __init__(self, root: Path, *, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(root)
        self._now = now or (lambda: datetime.now(UTC))

    # --- paths ---------------------------------------------------------------------------------

    def _side(self, area: str, bucket: str, key: str, suffix: str = "") -> Path:
        self._path(bucket, key)  # same key checks as the hot path
        return self.root / area / bucket / (key.lstrip("/") + suffix)

    def record_path(self, bucket: str, key: str) -> Path:
        return self._side(".tiers", bucket, key, ".json")

    def archive_path(self, bucket: str, key: str) -> Path:
        return self._side(".archive", bucket, key, ".gz")

    def restored_path(self, bucket: str, key: str) -> Path:
        return self._side(".restored", bucket, key)

    # --- records -------------------------------------------------------------------------------

    def record(self, bucket: str, key: str) -> TierRecord | None:
        if not bucket:
            return None
        try:
            return TierRecord.from_json(json.loads(self.record_path(bucket, key).read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            raise StorageError(f"unreadable storage-class record of s3://{bucket}/{key}: {exc}")

    def _write_record(self, bucket: str, key: str, rec: TierRecord, *, sync: bool = True) -> None:
        data = json.dumps(rec.to_json()).encode()
        atomic_write(self.record_path(bucket, key), lambda out: write_all(out, data), sync=sync)

    def _live(self, bucket: str, key: str, rec: TierRecord | None) -> TierRecord | None:
        """The record when it governs the object; None when a newer hot copy overrode it."""
        if rec is None:
            return None
        if rec.storage_class in ARCHIVE_CLASSES:
            try:
                st = self._path(bucket, key).stat()
            except OSError:
                return rec
            # A hot file other than the one archived is a later PUT whose clean-up was cut short.
            return rec if st.st_mtime_ns == rec.hot_mtime_ns else None
        return rec

    def _restored_ok(self, rec: TierRecord, now: datetime | None = None) -> bool:
        return rec.restore_expiry is not None and (now or self._now()) < rec.restore_expiry

    # --- the port, with classes ----------------------------------------------------------------

    def open_read(self, bucket: str, key: str) -> BinaryIO:
        rec = self._live(bucket, key, self.record(bucket, key))
        if rec is not None and rec.storage_class in ARCHIVE_CLASSES:
            if self._restored_ok(rec):
                try:
                    return self.restored_path(bucket, key).open("rb")
                except FileNotFoundError:
                    pass
            raise self._archived(bucket, key, rec)
        return super().open_read(bucket, key)

    def local_path(self, bucket: str, key: str) -> Path:
        """The readable file; for an archived object its restored copy. An archived object that
        is not restored raises InvalidObjectState here too, so readers that take the file directly
        (staging, the Hive engine) fail with the same message instead of skipping it."""
        rec = self._live(bucket, key, self.record(bucket, key))
        if rec is not None and rec.storage_class in ARCHIVE_CLASSES:
            if self._restored_ok(rec):
                return self.restored_path(bucket, key)
            raise self._archived(bucket, key, rec)
        return super().local_path(bucket, key)

    def unreadable_class(self, info: ObjectInfo) -> str | None:
        if info.storage_class not in ARCHIVE_CLASSES:
            return None  # listings read the class records: a hot object is readable
        rec = self._live(info.bucket, info.key, self.record(info.bucket, info.key))
        if rec is None or rec.storage_class not in ARCHIVE_CLASSES:
            return None
        if self._restored_ok(rec) and self.restored_path(info.bucket, info.key).exists():
            return None
        return rec.storage_class

    def hot_path(self, bucket: str, key: str) -> Path:
        """Where the hot copy is (or would be), whatever the object's class."""
        return self._path(bucket, key)

    def _archived(self, bucket: str, key: str, rec: TierRecord) -> ObjectStateError:
        return ObjectStateError(
            f"InvalidObjectState: s3://{bucket}/{key} is in storage class {rec.storage_class} and "
            f"cannot be read until restored: tailrace s3 restore s3://{bucket}/{key} --days N"
        )

    def put(
        self, bucket: str, key: str, data: bytes | BinaryIO | Path, *, storage_class: str = "STANDARD"
    ) -> None:
        """A PUT replaces any archived version and makes the object STANDARD (or storage_class
        among the readable classes; archive classes are reached through lifecycle rules)."""
        if storage_class not in READABLE_CLASSES:
            raise StorageError(f"storage class {storage_class!r} cannot be written directly")
        super().put(bucket, key, data)
        self._classify(bucket, key, storage_class)

    def adopt(self, bucket: str, key: str, staged: Path, *, storage_class: str = "STANDARD") -> None:
        """`put` for a file from `stage`: same classes, same atomic replacement."""
        if storage_class not in READABLE_CLASSES:
            staged.unlink(missing_ok=True)
            raise StorageError(f"storage class {storage_class!r} cannot be written directly")
        super().adopt(bucket, key, staged)
        self._classify(bucket, key, storage_class)

    def _classify(self, bucket: str, key: str, storage_class: str) -> None:
        if not bucket:
            return
        if storage_class != "STANDARD":
            self.set_class(bucket, key, storage_class)
        else:
            self._drop_sides(bucket, key)

    def _drop_sides(self, bucket: str, key: str) -> None:
        """Remove the record, archive and restored copies of a key. Every STANDARD PUT does this,
        mostly for files that do not exist: string paths after one key check (pathlib's joins
        cost more than the three unlink calls)."""
        self._path(bucket, key)  # the same key checks as the hot path
        root, rel = os.fspath(self.root), key.lstrip("/")
        for area, suffix in ((".tiers", ".json"), (".archive", ".gz"), (".restored", "")):
            path = f"{root}/{area}/{bucket}/{rel}{suffix}"
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot remove {path}: {exc.strerror}")

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        rec = self._live(bucket, key, self.record(bucket, key))
        if rec is not None and rec.storage_class in ARCHIVE_CLASSES:
            return ObjectInfo(
                bucket=bucket, key=key, size=rec.size, modified=rec.modified, storage_class=rec.storage_class
            )
        info = super().head(bucket, key)
        if info is not None and rec is not None:
            return ObjectInfo(
                bucket=bucket,
                key=key,
                size=info.size,
                modified=info.modified,
                storage_class=rec.storage_class,
            )
        return info

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Key order, streamed: memory grows with directory width, not with the bucket (the
        class records of non-STANDARD objects under prefix are read first)."""
        if not bucket:
            yield from super().list(bucket, prefix)
            return
        records = dict(self._records(bucket, prefix))
        archived = iter(sorted(k for k, r in records.items() if r.storage_class in ARCHIVE_CLASSES))
        pending = next(archived, None)
        for key, st in self._scan(bucket, prefix):
            while pending is not None and pending < key:
                yield self._archived_info(bucket, pending, records[pending])
                pending = next(archived, None)
            if pending == key:
                pending = next(archived, None)
            modified = datetime.fromtimestamp(st.st_mtime, UTC)
            rec = records.get(key)
            live = self._live(bucket, key, rec) if rec is not None else None
            if live is not None and live.storage_class in ARCHIVE_CLASSES:
                yield self._archived_info(bucket, key, live)  # its leftover hot copy is not listed
                continue
            cls = live.storage_class if live is not None else "STANDARD"
            yield ObjectInfo(bucket=bucket, key=key, size=st.st_size, modified=modified, storage_class=cls)
        while pending is not None:
            yield self._archived_info(bucket, pending, records[pending])
            pending = next(archived, None)

    @staticmethod
    def _archived_info(bucket: str, key: str, rec: TierRecord) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket, key=key, size=rec.size, modified=rec.modified, storage_class=rec.storage_class
        )

    def _scan(self, bucket: str, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        """(key, stat) of the hot files under prefix in key order, depth first. Entries are sorted
        with '/' after directory names, so 'a.b' comes before 'a/x' as in S3's byte order."""
        base = self.root / bucket
        top = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""

        def walk(d: Path, rel: str) -> Iterator[tuple[str, os.stat_result]]:
            try:
                entries = list(os.scandir(d))
            except OSError:
                return
            items: list[tuple[str, os.DirEntry[str], bool]] = []
            for e in entries:
                if is_hidden(e.name):
                    continue
                try:
                    isdir = e.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                items.append((e.name + "/" if isdir else e.name, e, isdir))
            items.sort(key=lambda t: t[0])
            for _, e, isdir in items:
                key = rel + e.name
                if isdir:
                    sub = key + "/"
                    if sub.startswith(prefix) or prefix.startswith(sub):
                        yield from walk(Path(e.path), sub)
                elif key.startswith(prefix):
                    try:
                        st = e.stat()
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        yield key, st

        yield from walk(base / top if top else base, top)

    def _records(self, bucket: str, prefix: str) -> Iterator[tuple[str, TierRecord]]:
        base = self.root / ".tiers" / bucket
        start = base / prefix
        walk_root = start if start.is_dir() else start.parent
        if not walk_root.is_dir():
            return
        for dirpath, _dirs, files in os.walk(walk_root):
            for name in files:
                if not name.endswith(".json") or name.startswith("."):
                    continue
                key = (Path(dirpath) / name).relative_to(base).as_posix().removesuffix(".json")
                if key.startswith(prefix):
                    rec = self.record(bucket, key)
                    if rec is not None:
                        yield key, rec

    def delete(self, bucket: str, key: str) -> None:
        """Deleting an archived object drops its record first: from then on it is gone."""
        if bucket:
            try:
                self.record_path(bucket, key).unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot delete {key}: {exc.strerror}")
        super().delete(bucket, key)
        if bucket:
            self._drop_sides(bucket, key)

    # --- tier moves ----------------------------------------------------------------------------

    def set_class(self, bucket: str, key: str, storage_class: str, *, sync: bool = True) -> int:
        """Change the class of a readable object to another readable class (no data moves).
        Returns the object's size."""
        if storage_class not in READABLE_CLASSES:
            raise StorageError(f"{storage_class} is an archive class: use archive()")
        st = self._hot_stat(bucket, key)
        if storage_class == "STANDARD":
            self.record_path(bucket, key).unlink(missing_ok=True)
            return st.st_size
        self._write_record(
            bucket,
            key,
            TierRecord(storage_class, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), st.st_mtime_ns),
            sync=sync,
        )
        return st.st_size

    def _hot_stat(self, bucket: str, key: str) -> os.stat_result:
        try:
            return self._path(bucket, key).stat()
        except FileNotFoundError:
            raise NotFoundError(f"no such object: s3://{bucket}/{key}")

    def archive(self, bucket: str, key: str, storage_class: str) -> int:
        """Move a hot object to the archive tier, compressed. Returns the bytes archived.

        Order (crash-safe): archive copy, then the record (the switch), then the hot copy goes.
        """
        if storage_class not in ARCHIVE_CLASSES:
            raise StorageError(f"{storage_class} is not an archive class")
        hot = self._path(bucket, key)
        st = self._hot_stat(bucket, key)

        try:
            atomic_write(self.archive_path(bucket, key), lambda out: compress_into(hot, out))
            self._switch(bucket, key, storage_class, st)
            drop_hot(hot, st)
        except OSError as exc:
            raise StorageError(f"cannot archive s3://{bucket}/{key}: {exc.strerror or exc}")
        return st.st_size

    def _switch(
        self, bucket: str, key: str, storage_class: str, st: os.stat_result, *, sync: bool = True
    ) -> None:
        if self._path(bucket, key).stat().st_mtime_ns != st.st_mtime_ns:
            raise StorageError(f"s3://{bucket}/{key} changed while being archived; left hot")
        rec = TierRecord(storage_class, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), st.st_mtime_ns)
        self._write_record(bucket, key, rec, sync=sync)

    def archive_many(
        self, bucket: str, moves: Sequence[tuple[str, str]]
    ) -> builtins.list[tuple[str, int | StorageError]]:
        """archive() for many objects, with two filesystem barriers in all instead of two fsyncs
        per object: every archive copy is durable before any record switches, and every record
        before any hot copy goes (the same order as archive(), batched). Each step runs on a few
        threads: metadata syscalls on a busy disk wait on I/O, not on the CPU. Returns (key,
        bytes archived or the error) per move, in order."""
        done: dict[str, int | StorageError] = {}

        def copy(move: tuple[str, str]) -> tuple[str, str, os.stat_result] | None:
            key, storage_class = move
            try:
                if storage_class not in ARCHIVE_CLASSES:
                    raise StorageError(f"{storage_class} is not an archive class")
                hot, st = self._path(bucket, key), self._hot_stat(bucket, key)
                atomic_write(
                    self.archive_path(bucket, key), functools.partial(compress_into, hot), sync=False
                )
                return key, storage_class, st
            except (OSError, StorageError) as exc:
                done[key] = as_storage_error(bucket, key, exc)
                return None

        def switch(item: tuple[str, str, os.stat_result]) -> tuple[str, os.stat_result] | None:
            key, storage_class, st = item
            try:
                self._switch(bucket, key, storage_class, st, sync=False)
                return key, st
            except (OSError, StorageError) as exc:
                done[key] = as_storage_error(bucket, key, exc)
                return None

        def drop(item: tuple[str, os.stat_result]) -> None:
            key, st = item
            try:
                drop_hot(self._path(bucket, key), st)
                done[key] = st.st_size
            except OSError as exc:
                done[key] = as_storage_error(bucket, key, exc)

        with ThreadPoolExecutor(IO_THREADS) as pool:
            staged = [x for x in pool.map(copy, moves) if x is not None]
            sync_filesystem(self.root)
            switched = [x for x in pool.map(switch, staged) if x is not None]
            sync_filesystem(self.root)
            list(pool.map(drop, switched))
        return [(key, done[key]) for key, _ in moves]

    def set_class_many(
        self, bucket: str, moves: Sequence[tuple[str, str]]
    ) -> builtins.list[tuple[str, int | StorageError]]:
        """set_class() for many objects (on a few threads), with one filesystem barrier at the end."""

        def one(move: tuple[str, str]) -> tuple[str, int | StorageError]:
            key, storage_class = move
            try:
                return key, self.set_class(bucket, key, storage_class, sync=False)
            except (OSError, StorageError) as exc:
                return key, as_storage_error(bucket, key, exc)

        with ThreadPoolExecutor(IO_THREADS) as pool:
            out = list(pool.map(one, moves))
        sync_filesystem(self.root)
        return out

    def delete_many(self, bucket: str, keys: Sequence[str]) -> builtins.list[tuple[str, StorageError | None]]:
        """delete() for many objects, on a few threads."""

        def one(key: str) -> tuple[str, StorageError | None]:
            try:
                self.delete(bucket, key)
                return key, None
            except StorageError as exc:
                return key, exc

        with ThreadPoolExecutor(IO_THREADS) as pool:
            return list(pool.map(one, keys))

    def restore(self, bucket: str, key: str, days: int, *, now: datetime | None = None) -> datetime:
        """Make a readable copy of an archived object for `days` days; returns its expiry.
        The archived object stays. A second restore only moves the expiry."""
        if days < 1:
            raise StorageError("restore --days must be at least 1")
        rec = self._live(bucket, key, self.record(bucket, key))
        if rec is None or rec.storage_class not in ARCHIVE_CLASSES:
            if self.head(bucket, key) is None:
                raise NotFoundError(f"no such object: s3://{bucket}/{key}")
            raise ObjectStateError(
                f"InvalidObjectState: s3://{bucket}/{key} is not archived; restore applies to "
                "GLACIER and DEEP_ARCHIVE objects"
            )
        target = self.restored_path(bucket, key)
        if not target.exists():
            src = self.archive_path(bucket, key)

            def inflate(out: BinaryIO) -> None:
                with gzip.open(src, "rb") as gz:
                    shutil.copyfileobj(gz, out, 1 << 20)

            try:
                atomic_write(target, inflate)
            except OSError as exc:
                raise StorageError(f"cannot restore s3://{bucket}/{key}: {exc.strerror or exc}")
        expiry = restore_expiry(now or self._now(), days)
        self._write_record(
            bucket, key, TierRecord(rec.storage_class, rec.size, rec.modified, rec.hot_mtime_ns, expiry)
        )
        return expiry

    def recover(self, bucket: str, *, now: datetime | None = None) -> dict[str, int]:
        """Finish what a crash interrupted, and drop expired restored copies. Counts per fix."""
        fixed = {"hot_removed": 0, "records_dropped": 0, "orphans_removed": 0, "restores_expired": 0}
        for key, rec in list(self._records(bucket, "")):
            hot = self._path(bucket, key)
            if rec.storage_class not in ARCHIVE_CLASSES:
                if not hot.exists():
                    self.record_path(bucket, key).unlink(missing_ok=True)
                    fixed["records_dropped"] += 1
                continue
            live = self._live(bucket, key, rec)
            if live is None:  # a newer PUT won: finish its clean-up
                self._drop_sides(bucket, key)
                fixed["records_dropped"] += 1
                continue
            if hot.exists() and self.archive_path(bucket, key).exists():
                hot.unlink()
                fixed["hot_removed"] += 1
            if rec.restore_expiry is not None and not self._restored_ok(rec, now):
                self.restored_path(bucket, key).unlink(missing_ok=True)
                self._write_record(
                    bucket, key, TierRecord(rec.storage_class, rec.size, rec.modified, rec.hot_mtime_ns)
                )
                fixed["restores_expired"] += 1
        for area, suffix in ((".archive", ".gz"), (".restored", ""), (".tiers", None)):
            base = self.root / area / bucket
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    path = Path(dirpath) / name
                    if name.startswith(".") and name.endswith(".tmp"):
                        if abandoned_temp(path):  # a write a crash cut short
                            path.unlink(missing_ok=True)
                            fixed["orphans_removed"] += 1
                        continue
                    if suffix is None:
                        continue  # records were checked above
                    key = path.relative_to(base).as_posix().removesuffix(suffix)
                    found = self.record(bucket, key)
                    if found is None or found.storage_class not in ARCHIVE_CLASSES:
                        path.unlink(missing_ok=True)  # an archive copy whose switch never happened
                        fixed["orphans_removed"] += 1
        return fixed

    def buckets(self) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
