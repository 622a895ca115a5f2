"""A durable file buffer of chunks keyed by (tag, time slice), with a two-phase commit.

Each chunk is three files in the buffer directory:

- `<id>.data`: exactly the bytes of the object it becomes (gzip members, or plain lines).
- `<id>.idx`: one JSON line per appended frame: source, batch sequence, end offset, lines.
- `<id>.meta`: tag, slice, state (staged/queued), and the object key once assigned.

A batch of lines read from a source is appended to every chunk it touches and fsync'ed; then the
source's position file is written with the batch's sequence number (the commit). On start,
`recover` truncates every chunk back to the last frame whose sequence the position file of its
source covers, so a batch that was appended but not committed is read again from the log,
never buffered twice. Chunk keys are assigned once, persisted, and reused by every retry.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isal import igzip

from tailrace.agent.config import MatchConfig


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace path with data: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


@dataclass(frozen=True)
class Frame:
    source: str
    seq: int
    end: int
    lines: int


@dataclass(frozen=True)
class Part:
    """Lines of one batch for one (tag, slice), ready to append."""

    tag: str
    slice: str
    slice_start: float
    data: bytes
    lines: int


@dataclass
class Chunk:
    id: str
    tag: str
    slice: str
    slice_start: float
    created: float
    dir: Path
    state: str = "staged"
    key: str | None = None
    index: int | None = None
    frames: list[Frame] = field(default_factory=list)
    fds: tuple[int, int] | None = None

    @property
    def data_path(self) -> Path:
        return self.dir / f"{self.id}.data"

    @property
    def idx_path(self) -> Path:
        return self.dir / f"{self.id}.idx"

    @property
    def meta_path(self) -> Path:
        return self.dir / f"{self.id}.meta"

    @property
    def size(self) -> int:
        return self.frames[-1].end if self.frames else 0

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.frames)

    def lines_by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.frames:
            out[f.source] = out.get(f.source, 0) + f.lines
        return out

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tag": self.tag,
            "slice": self.slice,
            "slice_start": self.slice_start,
            "created": self.created,
            "state": self.state,
            "key": self.key,
            "index": self.index,
        }


@dataclass
class RecoveryReport:
    chunks: int = 0
    truncated_frames: int = 0
    dropped_chunks: int = 0


class BufferFull(Exception):
    """The disk holding the buffer is full (ENOSPC/EDQUOT); the batch was rolled back."""


class Buffer:
    """Chunks of one [[match]]. Appends come from the reading thread; the flusher thread takes
    queued chunks with `next_queued`, assigns a key, ships, and calls `complete`."""

    def __init__(self, path: Path, conf: MatchConfig) -> None:
        self.dir = path
        self.conf = conf
        self.lock = threading.RLock()
        self.staged: dict[tuple[str, str], Chunk] = {}
        self.queue: list[Chunk] = []
        self.next_index: dict[str, int] = {}
        self._touched: dict[str, tuple[Chunk, int, int]] = {}
        self._new_files = False
        self.last_error: str | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    # --- recovery -------------------------------------------------------------------------

    def recover(self, committed: Mapping[str, int]) -> RecoveryReport:
        """Load chunks, dropping frames of batches whose source never committed them.

        `committed` maps a source id to the last sequence its position file recorded; frames of
        a source missing from it are kept (the source was removed from the config)."""
        report = RecoveryReport()
        state = self.dir / "state.json"
        if state.exists():
            try:
                self.next_index = {k: int(v) for k, v in json.loads(state.read_text())["next_index"].items()}
            except (ValueError, KeyError, TypeError):
                self.next_index = {}
        metas = {p.stem for p in self.dir.glob("*.meta")}
        for p in list(self.dir.glob("*.data")) + list(self.dir.glob("*.idx")):
            if p.stem not in metas:  # deleted after its meta (completion), or never committed
                p.unlink(missing_ok=True)
        for p in self.dir.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        chunks = []
        for stem in metas:
            meta_path = self.dir / f"{stem}.meta"
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta_path.unlink(missing_ok=True)
                continue
            chunk = Chunk(
                id=meta["id"],
                tag=meta["tag"],
                slice=meta["slice"],
                slice_start=float(meta["slice_start"]),
                created=float(meta["created"]),
                dir=self.dir,
                state=meta["state"],
                key=meta.get("key"),
                index=meta.get("index"),
            )
            frames = self._read_idx(chunk)
            size = chunk.data_path.stat().st_size if chunk.data_path.exists() else 0
            kept: list[Frame] = []
            for f in frames:
                # Stop at the first batch its source did not commit (or whose bytes are missing:
                # the index may reach the disk before the data when both were never fsync'ed).
                if f.seq > committed.get(f.source, f.seq) or f.end > size:
                    break
                kept.append(f)
            report.truncated_frames += len(frames) - len(kept)
            chunk.frames = kept
            if not kept:
                self._delete(chunk)
                report.dropped_chunks += 1
                continue
            if size > chunk.size or len(kept) < len(frames):
                os.truncate(chunk.data_path, chunk.size)
                write_atomic(chunk.idx_path, b"".join(self._idx_line(f) for f in kept))
            chunks.append(chunk)
        for chunk in sorted(chunks, key=lambda c: (c.created, c.id)):
            report.chunks += 1
            if chunk.state == "queued":
                self.queue.append(chunk)
            elif (chunk.tag, chunk.slice) in self.staged:
                self._seal(chunk)
            else:
                self.staged[(chunk.tag, chunk.slice)] = chunk
        return report

    def _read_idx(self, chunk: Chunk) -> list[Frame]:
        frames = []
        try:
            raw = chunk.idx_path.read_bytes()
        except OSError:
            return []
        for line in raw.split(b"\n"):
            try:
                d = json.loads(line)
                frames.append(Frame(d["s"], int(d["q"]), int(d["e"]), int(d["n"])))
            except (ValueError, KeyError, TypeError):
                break  # a torn last line: that frame was never committed
        return frames

    @staticmethod
    def _idx_line(f: Frame) -> bytes:
        return json.dumps({"s": f.source, "q": f.seq, "e": f.end, "n": f.lines}).encode() + b"\n"

    # --- appending (reading thread) -------------------------------------------------------

    def _encode(self, data: bytes) -> bytes:
        if self.conf.store_as == "gzip":
            return igzip.compress(data, self.conf.compression_level)
        return data

    def _create(self, part: Part, now: float) -> Chunk:
        chunk = Chunk(
            id=f"{int(now * 1000):013x}{uuid.uuid4().hex[:12]}",
            tag=part.tag,
            slice=part.slice,
            slice_start=part.slice_start,
            created=now,
            dir=self.dir,
        )
        write_atomic(chunk.meta_path, json.dumps(chunk.meta()).encode(), sync_dir=False)
        self._new_files = True
        self.staged[(part.tag, part.slice)] = chunk
        return chunk

    def _open(self, chunk: Chunk) -> tuple[int, int]:
        if chunk.fds is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            chunk.fds = (os.open(chunk.data_path, flags, 0o644), os.open(chunk.idx_path, flags, 0o644))
            self._new_files = True
        return chunk.fds

    def append(self, source: str, seq: int, parts: list[Part], now: float) -> None:
        """Write a batch's frames (not yet durable: call `sync`, or `rollback` on failure)."""
        try:
            for part in parts:
                if not part.lines:
                    continue
                frame = self._encode(part.data)
                with self.lock:
                    chunk = self.staged.get((part.tag, part.slice))
                    limit_records = self.conf.chunk_limit_records
                    if (
                        chunk is not None
                        and chunk.frames
                        and chunk.id not in self._touched
                        and (
                            chunk.size + len(frame) > self.conf.chunk_limit_size
                            or (limit_records is not None and chunk.lines + part.lines > limit_records)
                        )
                    ):
                        self._seal(chunk)
                        chunk = None
                    if chunk is None:
                        chunk = self._create(part, now)
                data_fd, idx_fd = self._open(chunk)
                if chunk.id not in self._touched:
                    self._touched[chunk.id] = (chunk, chunk.size, len(chunk.frames))
                _write_all(data_fd, frame)
                f = Frame(source, seq, chunk.size + len(frame), part.lines)
                _write_all(idx_fd, self._idx_line(f))
                chunk.frames.append(f)
        except OSError as exc:
            self.rollback()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise BufferFull(f"buffer disk full at {self.dir}: {exc.strerror}")
            raise

    def sync(self) -> None:
        """Make every frame appended since the last sync durable."""
        try:
            for chunk, _, _ in self._touched.values():
                if chunk.fds is not None:
                    os.fsync(chunk.fds[0])
                    os.fsync(chunk.fds[1])
            if self._new_files:
                fsync_dir(self.dir)
                self._new_files = False
        except OSError as exc:
            self.rollback()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise BufferFull(f"buffer disk full at {self.dir}: {exc.strerror}")
            raise
        self._touched.clear()

    def rollback(self) -> None:
        """Cut every chunk touched since the last sync back to its previous length."""
        with self.lock:
            for chunk, size, nframes in self._touched.values():
                del chunk.frames[nframes:]
                try:
                    os.truncate(chunk.data_path, size)
                    lines = b"".join(self._idx_line(f) for f in chunk.frames)
                    os.truncate(chunk.idx_path, len(lines))
                except OSError:
                    pass  # recovery truncates by the index if this failed
            self._touched.clear()

    # --- sealing --------------------------------------------------------------------------

    def _seal(self, chunk: Chunk) -> None:
        """staged -> queued; the meta is written first, so a full disk leaves the chunk staged."""
        if chunk.frames:
            write_atomic(chunk.meta_path, json.dumps({**chunk.meta(), "state": "queued"}).encode())
        if chunk.fds is not None:
            os.close(chunk.fds[0])
            os.close(chunk.fds[1])
            chunk.fds = None
        if self.staged.get((chunk.tag, chunk.slice)) is chunk:
            del self.staged[(chunk.tag, chunk.slice)]
        if not chunk.frames:
            self._delete(chunk)
            return
        chunk.state = "queued"
        self.queue.append(chunk)

    def seal_due(self, now: float, *, force: bool = False) -> int:
        """Queue the staged chunks whose flush time has come (all of them when force)."""
        c = self.conf
        sealed = 0
        with self.lock:
            for chunk in list(self.staged.values()):
                if chunk.id in self._touched:
                    continue
                if force or c.flush_mode == "immediate":
                    due = True
                elif c.flush_mode == "interval":
                    due = now >= chunk.created + c.flush_interval
                else:
                    due = now >= chunk.slice_start + c.timekey + c.timekey_wait
                if due:
                    try:
                        self._seal(chunk)
                    except OSError as exc:
                        self.last_error = f"cannot seal chunk {chunk.id}: {exc.strerror or exc}"
                        continue
                    sealed += 1
        return sealed

    # --- shipping (flusher thread) --------------------------------------------------------

    def next_queued(self) -> Chunk | None:
        with self.lock:
            return self.queue[0] if self.queue else None

    def assign(self, chunk: Chunk, key: str, index: int | None, counter: str | None) -> None:
        """Persist the object key of a chunk before its first upload; retries reuse it."""
        with self.lock:
            if counter is not None and index is not None:
                self.next_index[counter] = max(self.next_index.get(counter, 0), index + 1)
                write_atomic(self.dir / "state.json", json.dumps({"next_index": self.next_index}).encode())
            chunk.key, chunk.index = key, index
            write_atomic(chunk.meta_path, json.dumps(chunk.meta()).encode())

    def complete(self, chunk: Chunk) -> None:
        with self.lock:
            if chunk in self.queue:
                self.queue.remove(chunk)
            self._delete(chunk)

    def _delete(self, chunk: Chunk) -> None:
        # meta first: data without meta is known garbage, meta without data would be ambiguous.
        chunk.meta_path.unlink(missing_ok=True)
        chunk.data_path.unlink(missing_ok=True)
        chunk.idx_path.unlink(missing_ok=True)

    # --- limits ---------------------------------------------------------------------------

    @property
    def total_size(self) -> int:
        with self.lock:
            return sum(c.size for c in self.staged.values()) + sum(c.size for c in self.queue)

    @property
    def queued(self) -> int:
        with self.lock:
            return len(self.queue)

    def over_limit(self) -> str | None:
        """Why reading must pause (back-pressure), or None."""
        if self.total_size >= self.conf.total_limit_size:
            return f"buffer {self.conf.id} holds {self.total_size} bytes (total_limit_size {self.conf.total_limit_size})"
        limit = self.conf.queued_chunks_limit_size
        if limit is not None and self.queued >= limit:
            return f"buffer {self.conf.id} has {self.queued} queued chunks (queued_chunks_limit_size {limit})"
        return None

    def empty(self) -> bool:
        with self.lock:
            return not self.queue and not any(c.frames for c in self.staged.values())

    def close(self) -> None:
        with self.lock:
            for chunk in self.staged.values():
                if chunk.fds is not None:
                    os.close(chunk.fds[0])
                    os.close(chunk.fds[1])
                    chunk.fds = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
