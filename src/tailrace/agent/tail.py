"""Following files: globs, rotation by rename and by copytruncate, partial lines, positions.

Files are tracked by inode (fluentd's `follow_inodes`), so a rotated file that a glob still
matches is never read twice. A file whose path now names another inode (renamed) or nothing
(deleted) is read through its open descriptor until drained, and dropped `rotate_wait` seconds
after its last data. Only complete lines are handed out; the position of a file moves when the
caller commits a read, after the lines are durable in the buffer.
"""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from tailrace.agent.buffer import write_atomic
from tailrace.agent.config import SourceConfig

FINGERPRINT = 64
"""Bytes kept from just before the read position, to detect a rewritten file and find its copy."""
HEADER = "# tailrace position file (fluentd in_tail format: path, offset, inode in hex); commit "


@dataclass(frozen=True)
class PosEntry:
    path: str
    offset: int
    inode: int


class PositionFile:
    """fluentd's `path\\t%016x\\t%016x` lines, plus a comment line (ignored by fluentd) holding
    the sequence number of the last committed batch. Rewritten atomically and fsync'ed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[int | None, list[PosEntry]]:
        """(committed sequence or None when the file is absent or foreign, entries)."""
        try:
            text = self.path.read_text(errors="surrogateescape")
        except FileNotFoundError:
            return None, []
        seq: int | None = None
        entries: list[PosEntry] = []
        for line in text.splitlines():
            if line.startswith(HEADER):
                try:
                    seq = int(line[len(HEADER) :].strip(), 16)
                except ValueError:
                    seq = None
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            try:
                offset, inode = int(parts[1], 16), int(parts[2], 16)
            except ValueError:
                continue
            if offset == 0xFFFFFFFFFFFFFFFF:  # fluentd's "unwatched" marker
                continue
            entries.append(PosEntry(parts[0], offset, inode))
        return (seq if seq is not None else 0 if entries else None), entries

    def write(self, seq: int, entries: list[PosEntry]) -> None:
        lines = [f"{HEADER}{seq:016x}\n"] + [f"{e.path}\t{e.offset:016x}\t{e.inode:016x}\n" for e in entries]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, "".join(lines).encode(errors="surrogateescape"))


@dataclass
class Read:
    """Complete lines read from one file: bytes [start, end) of its inode."""

    watcher: Watcher
    start: int
    end: int
    data: bytes
    too_long: list[tuple[int, int, bytes]] = field(default_factory=list)
    """Lines longer than max_line_size inside [start, end): (offset, length, first bytes)."""


@dataclass
class Watcher:
    path: str
    inode: int
    dev: int
    fd: int
    offset: int
    """Committed position: everything before it is durable in the buffer."""
    read_offset: int = 0
    """Where the next read starts."""
    handed: int = 0
    """End of the complete lines handed out (committed or in the batch being committed)."""
    pending: bytearray = field(default_factory=bytearray)
    fingerprint: bytes = b""
    orphaned_at: float | None = None
    """When the configured paths stopped naming this inode (renamed away or deleted)."""
    last_data_at: float = 0.0
    skip: tuple[int, bytes] | None = None
    """Inside a line longer than max_line_size: (its offset, its first bytes)."""
    opened_wall: float = 0.0
    """time.time() when opened: compared with files' mtimes (not the agent's clock)."""

    def __post_init__(self) -> None:
        self.read_offset = self.handed = self.offset

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def reset(self) -> None:
        """Forget uncommitted reads (the buffer append failed): read again from `offset`."""
        self.read_offset = self.handed = self.offset
        self.pending.clear()
        self.skip = None
        n = min(FINGERPRINT, self.offset)
        try:
            self.fingerprint = os.pread(self.fd, n, self.offset - n) if n else b""
        except OSError:
            self.fingerprint = b""

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


ROTATED_SEPARATORS = frozenset(".-_")
"""What follows the log's name in a rotated file's name (access_log.1, access_log-20240101)."""
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".Z")
"""Rotated files compressed by logrotate hold lines already read from the uncompressed file."""

Event = Callable[[str, str], None]
"""(kind, message) reported to the agent's status: rotated, truncated, deleted, gone, error."""


class Tailer:
    """The files of one [[source]]."""

    def __init__(self, conf: SourceConfig, on_event: Event) -> None:
        self.conf = conf
        self.on_event = on_event
        self.watchers: dict[int, Watcher] = {}
        self.started = False
        self.next_scan = 0.0
        self.has_glob = any(glob.has_magic(p) for p in conf.paths)
        self.consumed = 0
        """Bytes read so far (also those of lines not complete yet)."""
        self.dropped: set[int] = set()
        """Inodes drained and closed in this process: never adopted again."""

    # --- discovery ------------------------------------------------------------------------

    def _matches(self) -> dict[int, tuple[str, os.stat_result]]:
        found: dict[int, tuple[str, os.stat_result]] = {}
        for pattern in self.conf.paths:
            names = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for name in names:
                if any(fnmatch(name, x) for x in self.conf.exclude_paths):
                    continue
                try:
                    st = os.stat(name)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_ino not in found:
                    found[st.st_ino] = (name, st)
        return found

    def _open(self, path: str, st: os.stat_result, offset: int, now: float) -> Watcher | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self.on_event("error", f"cannot open {path}: {exc.strerror}")
            return None
        real = os.fstat(fd)
        if real.st_ino != st.st_ino:  # replaced between stat and open: pick it up next scan
            os.close(fd)
            return None
        w = Watcher(
            path=path,
            inode=real.st_ino,
            dev=real.st_dev,
            fd=fd,
            offset=offset,
            last_data_at=now,
            opened_wall=time.time(),
        )
        if offset:
            w.fingerprint = os.pread(fd, min(FINGERPRINT, offset), offset - min(FINGERPRINT, offset))
        self.watchers[w.inode] = w
        return w

    def start(self, entries: list[PosEntry], now: float, *, committed_at: float | None = None) -> None:
        """Open the files of the position file and of the configured paths (first scan).
        `committed_at`: the position file's mtime (its last commit), for _adopt_unseen."""
        matches = self._matches()
        known_paths = {e.path for e in entries}
        moved: list[tuple[str, float]] = []
        for e in entries:
            if e.inode in self.watchers:
                continue
            if e.inode in matches:
                path, st = matches[e.inode]
            else:
                found = _find_inode(e.path, e.inode)
                if found is None:
                    self.on_event("gone", f"{e.path} (inode {e.inode}) disappeared while the agent was down")
                    continue
                path, st = found
                if path == e.path:
                    self.on_event("rotated", f"{path} (rotated earlier) is read until drained")
                else:
                    self.on_event(
                        "rotated", f"{e.path} was rotated while the agent was down; draining {path}"
                    )
                    moved.append((e.path, st.st_mtime))
            offset = e.offset
            if st.st_size < offset:
                self.on_event("truncated", f"{path} is shorter than its position; reading from the start")
                offset = 0
            w = self._open(path, st, offset, now)
            if w is not None and e.inode not in matches:
                w.orphaned_at = now
        for old_path, rotated_mtime in moved:
            # An unseen file was written after the last commit, or (when the agent committed
            # other lines after its last write) after the file rotated before it last grew.
            after = min(committed_at, rotated_mtime) if committed_at is not None else rotated_mtime
            self._adopt_unseen(old_path, after=after, skip=set(matches), now=now)
        for inode, (path, st) in matches.items():
            if inode in self.watchers:
                continue
            # A path the position file knew under another inode was rotated: read all of it.
            head = self.conf.read_from_head or path in known_paths
            self._open(path, st, 0 if head else st.st_size, now)
        self.started = True
        self.next_scan = now + self.conf.refresh_interval

    def scan(self, now: float) -> None:
        """Pick up new files (from their head) and notice files no path names any more."""
        matches = self._matches()
        for inode, (path, st) in matches.items():
            w = self.watchers.get(inode)
            if w is None:
                self._open(path, st, 0, now)
            else:
                w.path = path
                w.orphaned_at = None
        for w in list(self.watchers.values()):  # _adopt_unseen may add watchers
            if w.inode not in matches and w.orphaned_at is None:
                w.orphaned_at = now
                new = _find_inode(w.path, w.inode)
                if new is not None:
                    self.on_event("rotated", f"{w.path} was renamed to {new[0]}; draining it")
                    old_path, w.path = w.path, new[0]
                    # A file that came and was rotated away between two polls: written after
                    # this one was opened (a second of slack for coarse file times).
                    self._adopt_unseen(old_path, after=w.opened_wall - 1.0, skip=set(matches), now=now)
                else:
                    self.on_event("deleted", f"{w.path} was deleted; draining the open file")
        self.next_scan = now + self.conf.refresh_interval

    def poll(self, now: float) -> None:
        """Rescan when due, or at once when a watched path names another inode."""
        due = now >= self.next_scan or not self.has_glob
        if not due:
            for w in self.watchers.values():
                if w.orphaned_at is None:
                    try:
                        if os.stat(w.path).st_ino != w.inode:
                            due = True
                            break
                    except OSError:
                        due = True
                        break
        if due:
            self.scan(now)

    # --- reading --------------------------------------------------------------------------

    def _truncated(self, w: Watcher, now: float) -> None:
        """copytruncate: adopt the copy (matched by the bytes before our position) if it is
        there, so the lines between our last read and the truncation are read from it."""
        copy = _find_copy(w, set(self.watchers)) if w.read_offset else None
        if copy is not None:
            path, st = copy
            cw = self._open(path, st, w.offset, now)
            if cw is not None:
                cw.orphaned_at = now
                self.on_event("truncated", f"{w.path} was truncated; reading the rest from its copy {path}")
        else:
            self.on_event(
                "truncated",
                f"{w.path} was truncated at {w.read_offset} bytes; lines written after the last read "
                "and before the truncation are lost (no copy found)",
            )
        w.offset = 0
        w.reset()
        w.fingerprint = b""

    def read(self, w: Watcher, limit: int, now: float) -> Read | None:
        """Up to `limit` new bytes of complete lines from one file, or None."""
        try:
            size = w.size()
        except OSError as exc:
            self.on_event("error", f"cannot stat {w.path}: {exc.strerror}")
            return None
        if size < w.read_offset or (w.fingerprint and size > w.read_offset and not _same_tail(w)):
            if w.handed != w.offset:
                return None  # lines of this file are in the batch being committed: next batch
            self._truncated(w, now)
            size = w.size()
        if size <= w.read_offset:
            return None
        data = os.pread(w.fd, min(limit, size - w.read_offset), w.read_offset)
        if not data:
            return None
        w.read_offset += len(data)
        w.last_data_at = now
        w.fingerprint = (w.fingerprint + data)[-FINGERPRINT:]
        return self._lines(w, data)

    def _lines(self, w: Watcher, data: bytes) -> Read | None:
        """Cut the bytes [read_offset - len(data), read_offset) into complete lines."""
        start = w.handed
        at = w.read_offset - len(data)  # file position of data[0]
        too_long: list[tuple[int, int, bytes]] = []
        if w.skip is not None:  # inside an over-long line: discard up to its newline
            cut = data.find(b"\n")
            if cut < 0:
                return None
            line_at, head = w.skip
            too_long.append((line_at, at + cut - line_at, head))
            w.skip = None
            data, at = data[cut + 1 :], at + cut + 1
            w.handed = at
        end_cut = data.rfind(b"\n")
        if end_cut < 0:
            w.pending += data
            if len(w.pending) > self.conf.max_line_size:
                w.skip = (w.handed, bytes(w.pending[:4096]))
                w.pending.clear()
            return Read(w, start, w.handed, b"", too_long) if too_long else None
        lines = bytes(w.pending) + data[: end_cut + 1] if w.pending else data[: end_cut + 1]
        w.pending = bytearray(data[end_cut + 1 :])
        w.handed = at + end_cut + 1
        return Read(w, start, w.handed, lines, too_long)

    def final_partial(self, w: Watcher) -> Read | None:
        """The last line of a file that will not grow any more (no newline at its end)."""
        if not w.pending:
            return None
        data = bytes(w.pending) + b"\n"
        w.pending.clear()
        start, w.handed = w.handed, w.handed + len(data) - 1
        return Read(w, start, w.handed, data)

    def reads(self, limit: int, now: float) -> Iterator[Read]:
        """Reads from every file with new data, `limit` bytes in all at most."""
        budget = limit
        for w in sorted(self.watchers.values(), key=lambda w: (w.orphaned_at is None, w.inode)):
            while budget > 0:
                before = w.read_offset
                r = self.read(w, budget, now)
                consumed = w.read_offset - before
                if r is None and consumed <= 0:
                    break
                budget -= max(consumed, 1)
                self.consumed += max(consumed, 0)
                if r is not None:
                    yield r
            if budget <= 0:
                return

    def finished(self, now: float) -> list[Watcher]:
        """Orphaned files drained and quiet for rotate_wait: to be closed by the caller after
        their final partial line (if any) is committed."""
        done = []
        for w in self.watchers.values():
            if w.orphaned_at is None or now - max(w.orphaned_at, w.last_data_at) < self.conf.rotate_wait:
                continue
            try:
                if w.size() > w.read_offset:
                    continue
            except OSError:
                pass
            done.append(w)
        return done

    def drop(self, w: Watcher) -> None:
        w.close()
        self.watchers.pop(w.inode, None)
        self.dropped.add(w.inode)

    def _adopt_unseen(self, path: str, *, after: float, skip: set[int], now: float) -> None:
        """Read, from its head, each rotated sibling of `path` the agent never saw: named like
        it (access_log.1, access_log-20240101), not compressed, not watched, dropped or matched,
        and written after `after`. Such a file was created at the path and rotated away while
        the agent was down, or between two of its polls; without this its lines were lost."""
        base = os.path.basename(path)
        for name, st in _siblings(path):
            own = os.path.basename(name)
            rest = own[len(base) :]
            if (
                not own.startswith(base)
                or not rest
                or rest[0] not in ROTATED_SEPARATORS
                or name.endswith(COMPRESSED)
                or st.st_ino in self.watchers
                or st.st_ino in self.dropped
                or st.st_ino in skip
                or st.st_mtime < after
                or any(fnmatch(name, x) for x in self.conf.exclude_paths)
            ):
                continue
            w = self._open(name, st, 0, now)
            if w is not None:
                w.orphaned_at = now
                self.on_event("rotated", f"{name} was written at {path} and rotated away unseen; reading it")

    def entries(self) -> list[PosEntry]:
        return [PosEntry(w.path, w.offset, w.inode) for w in self.watchers.values()]

    def lag(self) -> int:
        total = 0
        for w in self.watchers.values():
            try:
                total += max(w.size() - w.offset, 0)
            except OSError:
                pass
        return total

    def idle(self) -> bool:
        """Every file read to its end (for --drain)."""
        try:
            return all(w.size() <= w.read_offset for w in self.watchers.values())
        except OSError:
            return False

    def close(self) -> None:
        for w in self.watchers.values():
            w.close()
        self.watchers.clear()


def _same_tail(w: Watcher) -> bool:
    n = len(w.fingerprint)
    return os.pread(w.fd, n, w.read_offset - n) == w.fingerprint


def _siblings(path: str) -> Iterator[tuple[str, os.stat_result]]:
    directory = os.path.dirname(path) or "."
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield entry.path, st


def _find_inode(path: str, inode: int) -> tuple[str, os.stat_result] | None:
    """Where a file went: the same directory, searched by inode (rotation by rename)."""
    try:
        st = os.stat(path)
        if st.st_ino == inode:
            return path, st
    except OSError:
        pass
    for name, st in _siblings(path):
        if st.st_ino == inode:
            return name, st
    return None


def _find_copy(w: Watcher, watched: set[int]) -> tuple[str, os.stat_result] | None:
    """A sibling holding the same bytes just before our read position: copytruncate's copy."""
    n = len(w.fingerprint)
    if not n:
        return None
    for name, st in _siblings(w.path):
        if st.st_ino in watched or st.st_size < w.read_offset:
            continue
        try:
            with open(name, "rb") as fh:
                fh.seek(w.read_offset - n)
                if fh.read(n) == w.fingerprint:
                    return name, st
        except OSError:
            continue
    return None
