"""One agent per buffer and position file: two agents on the same ones would each ship every
line (and rewrite each other's positions). The agent holds an exclusive `fcntl` lock on a lock
file beside each for as long as it runs; the kernel drops it when the process dies, so a crash
never leaves a stale lock behind.

The lock is on `<file>.lock` (for a buffer directory, `<dir>/.lock`), not on the position file
itself: that file is replaced by rename on every commit, and a lock follows the old inode.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

from tailrace.errors import ConfigError


class AgentLocked(ConfigError):
    """Another running agent uses one of this agent's buffer or position files."""


class FileLocks:
    def __init__(self) -> None:
        self._fds: list[int] = []

    def acquire(self, targets: Iterable[tuple[Path, str]]) -> None:
        """Lock every (lock file, what it guards) or none. :raises AgentLocked: naming the
        file, what it guards and the pid of the agent that holds it."""
        try:
            for lock_path, what in targets:
                self._fds.append(_lock(lock_path, what))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for fd in self._fds:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._fds = []


def lock_file_for(path: Path, *, directory: bool) -> Path:
    return path / ".lock" if directory else path.with_name(path.name + ".lock")


def _lock(path: Path, what: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise AgentLocked(
            f"another agent (pid {holder}) is already using {what}; two agents on the same files would "
            "ship every line twice. Stop it first, or give this agent its own buffer_path and pos_file."
        )
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
