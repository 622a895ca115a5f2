"""Object store on a local directory: `<root>/<bucket>/<key>` (bucket '' means root is '/')."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from tailrace.errors import NotFoundError, StorageError
from tailrace.storage.abc import ObjectInfo, ObjectStore
from tailrace.storage.keys import check_bucket, check_key

_RENAME_EXCHANGE = 2
OLD_GRACE_SECONDS = 60.0
"""How long a directory replaced by commit_directory is kept (hidden) for readers still in it."""


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False when unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _temp_beside(path: Path | str) -> tuple[int, str]:
    """A new hidden file next to path (.NAME.PID.RANDOM.tmp: recovery removes those of dead
    writers), private to this user as mkstemp makes them; the directories are made only when
    missing (one syscall less per write)."""
    folder, name = os.path.split(os.fspath(path))
    tmp = f"{folder}/.{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(tmp, flags, 0o600), tmp
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        return os.open(tmp, flags, 0o600), tmp


def is_hidden(name: str) -> bool:
    """Hive and Hadoop skip files whose name starts with '_' or '.' (e.g. _SUCCESS, temp files)."""
    return name.startswith(("_", "."))


class LocalStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return Path(self._spath(bucket, key))

    def _spath(self, bucket: str, key: str) -> str:
        """The object's path as a string: writes use it as is (pathlib's joins cost more than
        the write's syscalls for a small object)."""
        if bucket:
            # Refused, never resolved: a key must not leave its bucket's directory.
            check_bucket(bucket)
            check_key(key)
            return f"{os.fspath(self.root)}/{bucket}/{key}".rstrip("/")  # as pathlib joins 'a/' or ''
        return "/" + key.lstrip("/")

    def local_path(self, bucket: str, key: str) -> Path:
        return self._path(bucket, key)

    def get(self, bucket: str, key: str) -> bytes:
        with self.open_read(bucket, key) as fh:
            return fh.read()

    def open_read(self, bucket: str, key: str) -> BinaryIO:
        path = self._path(bucket, key)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"no such object: {path}")
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}")

    def put(self, bucket: str, key: str, data: bytes | BinaryIO | Path) -> None:
        path = self._spath(bucket, key)
        try:
            fd, tmp = _temp_beside(path)
            try:
                with os.fdopen(fd, "wb") as out:
                    if isinstance(data, bytes | bytearray | memoryview):
                        out.write(data)
                    elif isinstance(data, Path):
                        with data.open("rb") as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                    else:
                        shutil.copyfileobj(data, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}")

    def stage(self, bucket: str, key: str) -> tuple[BinaryIO, Path]:
        """A hidden temporary file beside the object (same filesystem, never listed) for a writer
        that streams the body itself, then calls `adopt`. The writer's pid is in the name, so
        recovery removes the files of writers that died."""
        path = self._path(bucket, key)
        try:
            fd, tmp = _temp_beside(path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}")
        return os.fdopen(fd, "wb"), Path(tmp)

    def adopt(self, bucket: str, key: str, staged: Path) -> None:
        """Make a file from `stage` the object: durable (fsync) before it appears, then one atomic
        rename, as `put` does. The staged file is gone afterwards, whatever happens."""
        path = self._path(bucket, key)
        try:
            fd = os.open(staged, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(staged, path)
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}")

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._path(bucket, key)
        try:
            st = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        return ObjectInfo(
            bucket=bucket, key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC)
        )

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(bucket, "")
        start = self._path(bucket, prefix)
        # Walk from the deepest existing directory named by the prefix.
        walk_root = start if start.is_dir() else start.parent
        if not walk_root.is_dir():
            return
        found: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(walk_root):
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            for name in filenames:
                if is_hidden(name):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(base).as_posix() if bucket else full.as_posix().lstrip("/")
                want = prefix.lstrip("/") if not bucket else prefix
                if key.startswith(want):
                    try:
                        found.append((key, full.stat()))
                    except OSError:
                        continue
        for key, st in sorted(found):
            yield ObjectInfo(
                bucket=bucket, key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC)
            )

    def delete(self, bucket: str, key: str) -> None:
        try:
            self._path(bucket, key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror}")

    def commit_directory(self, bucket: str, prefix: str, staged: Path) -> None:
        """Swap the staged directory into place with one atomic rename (exchange when it exists).

        Readers see the old directory or the new one; on any failure the old one is untouched.
        """
        target = self._path(bucket, prefix.rstrip("/"))
        sibling = target.parent / f".{target.name}.commit-{uuid.uuid4().hex[:8]}"
        try:
            if target.exists() and not target.is_dir():
                raise StorageError(f"cannot replace {target}: it is a file, not a directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            # The staged directory must be on the same filesystem: move it next to the target.
            shutil.move(str(staged), sibling)
            if target.exists():
                if _exchange(sibling, target):
                    # Readers that opened the old directory may still be reading it: keep it a
                    # little while (hidden), and clear older ones.
                    sibling.rename(target.parent / f".{target.name}.old-{time.time_ns()}")
                    self._sweep(target)
                    return
                # No renameat2: a short window where the directory is absent.
                old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(target, old)
                os.rename(sibling, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(sibling, target)
        except OSError as exc:
            shutil.rmtree(sibling, ignore_errors=True)
            raise StorageError(f"cannot commit {target}: {exc.strerror or exc}")

    def _sweep(self, target: Path) -> None:
        """Delete replaced directories next to target (its own and its siblings') older than
        OLD_GRACE_SECONDS."""
        cutoff = time.time_ns() - int(OLD_GRACE_SECONDS * 1e9)
        for old in target.parent.glob(".*.old-*"):
            stamp = old.name.rsplit("-", 1)[-1]
            if stamp.isdigit() and int(stamp) < cutoff:
                shutil.rmtree(old, ignore_errors=True)
