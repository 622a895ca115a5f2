"""The agent: read batches, parse, append to the buffers, commit positions, ship chunks.

One batch of one source is the unit of exactly-once delivery:

1. read complete lines from the source's files (up to `read_block_size` bytes in all);
2. parse and format them, and append the frames to the chunks of every buffer they go to
   (records to their [[match]], bad lines to the error sink), then fsync;
3. write the source's position file with the batch's sequence number (atomic, fsync'ed).

A crash before 3 leaves frames whose sequence the position file does not cover; `Buffer.recover`
cuts them off and the lines are read again. A crash after 3 loses nothing and repeats nothing.
Chunks are shipped by one flusher per output, under keys fixed before their first upload.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import polars as pl

from tailrace.agent.buffer import Buffer, BufferFull, Part
from tailrace.agent.config import AgentConfig, MatchConfig, SourceConfig
from tailrace.agent.cwmetrics import Reporter, Tally, codes_of
from tailrace.agent.lines import Lines, split_lines
from tailrace.agent.locks import FileLocks, lock_file_for
from tailrace.agent.metrics import MonitorServer, SourceStats, write_status
from tailrace.agent.output import Formatter, Output, ShipResult, Sink, StdoutSink, StoreSink
from tailrace.agent.parsers import Parsed, Parser, make_parser
from tailrace.agent.tail import PositionFile, Read, Tailer
from tailrace.clock import Clock, SystemClock
from tailrace.storage import Storage

log = logging.getLogger("tailrace.agent")
ERRORS_ID = "errors"


@dataclass
class _Source:
    conf: SourceConfig
    key: str
    """Identity of the source in buffer frames: its position file, absolute."""
    tailer: Tailer
    parser: Parser
    posfile: PositionFile
    stats: SourceStats
    seq: int = 0
    paused_until: float = 0.0
    full_failures: int = 0
    pos_dirty: bool = False


def expand_tag(tag: str, path: str) -> str:
    """in_tail: `*` in the tag becomes the file's path with '/' turned into '.'."""
    return tag.replace("*", path.strip("/").replace("/", ".")) if "*" in tag else tag


def error_match(config: AgentConfig) -> MatchConfig:
    """The error sink: plain-text objects of bad lines, one series per hour and host."""
    host = config.system.hostname.replace("%", "%%")
    return MatchConfig(
        id=ERRORS_ID,
        pattern="**",
        type="store",
        path=config.system.error_path,
        object_key_format="%{path}%{time_slice}_%{index}.log",
        time_slice_format=f"%Y%m%d/{host}-%H",
        timekey=3600,
        timekey_wait=0,
        zone=config.matches[0].zone if config.matches else "UTC",
        buffer_path=config.system.state_dir / "buffer" / "_errors",
        flush_mode="interval",
        flush_interval=5.0,
        store_as="text",
        check_object=True,
    )


class Agent:
    """Runs the sources and outputs of one AgentConfig.

    `step()` and `flush()` do one round of work without sleeping (tests drive them with a
    FrozenClock); `run()` loops them with flusher threads until stopped."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        storage: Storage | None = None,
        sinks: Mapping[str, Sink] | None = None,
        clock: Clock | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.matches = {m.id: m for m in config.matches}
        self.matches[ERRORS_ID] = error_match(config)
        self.outputs: dict[str, Output] = {}
        self.formatters: dict[str, Formatter] = {}
        sinks = dict(sinks or {})
        for mid, m in self.matches.items():
            sink = sinks.get(mid)
            if sink is None:
                if m.type == "stdout":
                    sink = StdoutSink(stdout)
                else:
                    if storage is None:
                        raise ValueError(f"match '{mid}' writes to {m.path}: the agent needs a Storage")
                    sink = StoreSink(storage.resolve(m.path))
            self.outputs[mid] = Output(m, Buffer(m.buffer_path, m), sink, config.system.hostname)
            self.formatters[mid] = Formatter(m)
        self.sources: list[_Source] = []
        for s in config.sources:
            stats = SourceStats(id=s.id, tag=s.tag, paths=s.paths)
            src = _Source(
                conf=s,
                key=str(s.pos_file.resolve()),
                tailer=Tailer(s, self._reporter(stats)),
                parser=make_parser(s.parse),
                posfile=PositionFile(s.pos_file),
                stats=stats,
            )
            self.sources.append(src)
        self.by_key = {s.key: s for s in self.sources}
        self._wake = {mid: threading.Event() for mid in self.outputs}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._snapshot: dict[str, Any] = {}
        self._next_status = 0.0
        self.monitor: MonitorServer | None = None
        self.started = False
        self.locks = FileLocks()
        self.tally = Tally()
        self.reporter: Reporter | None = (
            Reporter(config.metrics, self.tally, config.system.hostname) if config.metrics else None
        )

    def _reporter(self, stats: SourceStats) -> Callable[[str, str], None]:
        def report(kind: str, message: str) -> None:
            stats.event(self.now(), kind, message)
            (log.warning if kind in ("error", "gone", "truncated", "disk_full") else log.info)(
                "%s: %s", stats.id, message
            )

        return report

    def now(self) -> float:
        return self.clock.now().timestamp()

    # --- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Lock the buffers and position files, recover the buffers against the position files,
        then open the files. :raises AgentLocked: when another agent runs on any of them."""
        self.locks.acquire(
            [
                *(
                    (lock_file_for(s.conf.pos_file, directory=False), f"position file {s.conf.pos_file}")
                    for s in self.sources
                ),
                *(
                    (lock_file_for(o.buffer.dir, directory=True), f"buffer directory {o.buffer.dir}")
                    for o in self.outputs.values()
                ),
            ]
        )
        now = self.now()
        loaded = {}
        committed: dict[str, int] = {}
        for src in self.sources:
            seq, entries = src.posfile.load()
            loaded[src.key] = (seq, entries)
            src.seq = seq or 0
            if seq is not None:
                committed[src.key] = seq
        for out in self.outputs.values():
            report = out.buffer.recover(committed)
            if report.truncated_frames:
                log.info(
                    "%s: dropped %d uncommitted frame(s) left by a crash; their lines are read again",
                    out.conf.id,
                    report.truncated_frames,
                )
        for src in self.sources:
            seq, entries = loaded[src.key]
            try:
                committed_at: float | None = src.posfile.path.stat().st_mtime if seq is not None else None
            except OSError:
                committed_at = None
            src.tailer.start(entries, now, committed_at=committed_at)
            if seq is None:
                # From now on a missing position file means someone removed it on purpose.
                src.posfile.write(0, src.tailer.entries())
        self.started = True
        self._refresh_status(now, write=True)

    # --- reading and committing --------------------------------------------------------------

    def _blocked(self) -> str | None:
        for out in self.outputs.values():
            reason = out.buffer.over_limit()
            if reason:
                return reason
        return None

    def step(self) -> bool:
        """One round: poll files, read and commit a batch per source, seal due chunks."""
        if not self.started:
            self.start()
        now = self.now()
        worked = False
        blocked = self._blocked()
        for src in self.sources:
            if src.pos_dirty:
                self._write_pos(src)
            src.tailer.poll(now)
            if blocked:
                if src.stats.paused != blocked:
                    src.stats.event(now, "paused", f"reading paused: {blocked}")
                src.stats.paused = blocked
                continue
            if now < src.paused_until:
                continue
            src.stats.paused = None
            consumed = src.tailer.consumed
            reads = list(src.tailer.reads(src.conf.read_block_size, now))
            worked = worked or src.tailer.consumed > consumed
            finals = []
            if not reads:
                for w in src.tailer.finished(now):
                    r = src.tailer.final_partial(w)
                    if r is not None:
                        reads.append(r)
                    finals.append(w)
            if (reads or finals) and self._commit(src, reads, now):
                for w in finals:
                    src.tailer.drop(w)
                worked = worked or bool(reads)
        for mid, out in self.outputs.items():
            if out.buffer.seal_due(now) or out.buffer.queued:
                self._wake[mid].set()
        if now >= self._next_status:
            self._refresh_status(now, write=True)
        return worked

    def _errors(
        self, src: _Source, path: str, lines: Lines, r: Read, parsed_bad: Iterator[tuple[int, str]]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, reason in sorted(parsed_bad):
            raw = lines.raw(i)
            out.append(
                {
                    "reason": reason,
                    "path": path,
                    "offset": r.start + lines.offsets(i),
                    "line": _text(raw, 65536),
                    "length": len(raw),
                }
            )
        for offset, length, head in r.too_long:
            out.append(
                {
                    "reason": "line longer than max_line_size",
                    "path": path,
                    "offset": offset,
                    "line": _text(head, 4096),
                    "length": length,
                }
            )
        for rec in out:
            src.stats.reasons[rec["reason"]] += 1
        return out

    def _commit(self, src: _Source, reads: list[Read], now: float) -> bool:
        stamp = datetime.fromtimestamp(now, UTC)
        parts: dict[str, list[Part]] = {}
        errors: list[dict[str, Any]] = []
        n_read = n_good = 0
        requests: list[dict[int, dict[str, float]]] = []
        for r in reads:
            path = r.watcher.path
            tag = expand_tag(src.conf.tag, path)
            lines = split_lines(r.data, src.conf.max_line_size)
            parsed = src.parser.parse(lines.good, stamp) if len(lines.good) else None
            n_read += len(lines.good) + len(lines.bad) + len(r.too_long)
            bad = list(lines.bad)
            if parsed is not None:
                bad += [(lines.index[i] if lines.index else i, why) for i, why in parsed.bad]
                match = self.config.match_for(tag)
                if match is None:
                    bad = [
                        (i, f"no [[match]] pattern matches tag '{tag}'")
                        for i in range(len(lines.good) + len(lines.bad))
                    ]
                elif len(parsed):
                    extra = {src.conf.path_key: path} if src.conf.path_key else None
                    parts.setdefault(match.id, []).extend(self.formatters[match.id].parts(parsed, tag, extra))
                    n_good += len(parsed)
                    if self.reporter is not None:
                        requests.append(Tally.requests(parsed.time, codes_of(parsed)))
            errors += self._errors(src, path, lines, r, iter(bad))
        if errors:
            times = pl.repeat(stamp, len(errors), eager=True).cast(pl.Datetime("us", "UTC"))
            err_parsed = Parsed(time=times, dicts=errors)
            parts[ERRORS_ID] = self.formatters[ERRORS_ID].parts(err_parsed, src.conf.tag)
        seq = src.seq + 1
        touched: list[Buffer] = []
        try:
            for mid, plist in parts.items():
                buf = self.outputs[mid].buffer
                touched.append(buf)
                buf.append(src.key, seq, _merge(plist), now)
            for buf in touched:
                buf.sync()
        except (BufferFull, OSError) as exc:
            for buf in touched:
                buf.rollback()
            for r in reads:
                r.watcher.reset()
            src.full_failures += 1
            wait = min(2.0 ** (src.full_failures - 1), 60.0)
            src.paused_until = now + wait
            kind = "disk_full" if isinstance(exc, BufferFull) else "error"
            src.stats.event(
                now,
                kind,
                f"cannot buffer {sum(len(r.data) for r in reads)} bytes ({exc}); retrying in {wait:g}s, nothing was dropped",
            )
            src.stats.paused = str(exc)
            return False
        src.full_failures = 0
        for r in reads:
            r.watcher.offset = r.end
        src.seq = seq
        self._write_pos(src)
        st = src.stats
        st.bytes_read += sum(r.end - r.start for r in reads)
        st.lines_read += n_read
        st.lines_parsed += n_good
        st.lines_malformed += len(errors)
        st.lines_buffered += n_good
        if self.reporter is not None:  # counted once the lines are committed, not before
            for per_minute in requests:
                for minute, counts in per_minute.items():
                    self.tally.add(src.conf.id, minute, counts)
            self.tally.add_now(src.conf.id, now, "ParseErrors", len(errors))
        return True

    def _write_pos(self, src: _Source) -> None:
        try:
            src.posfile.write(src.seq, src.tailer.entries())
            src.pos_dirty = False
        except OSError as exc:
            # The frames stay in the buffer; the next successful write (a higher sequence) covers them.
            src.pos_dirty = True
            src.stats.event(self.now(), "error", f"cannot write {src.posfile.path}: {exc.strerror}")

    # --- shipping -------------------------------------------------------------------------------

    def _shipped(self, out: Output, result: ShipResult) -> None:
        if result.error:
            log.warning(
                "%s: upload of %s failed (%s); retrying in %.1fs",
                out.conf.id,
                result.chunk.id,
                result.error,
                out.next_try - self.now(),
            )
            return
        log.info("%s: shipped %s (%d lines)", out.conf.id, result.uri, result.chunk.lines)
        for key, n in result.chunk.lines_by_source().items():
            src = self.by_key.get(key)
            if src is None:
                continue
            if out.conf.id == ERRORS_ID:
                src.stats.malformed_shipped += n
            else:
                src.stats.lines_shipped += n
                if self.reporter is not None:
                    self.tally.add_now(src.conf.id, self.now(), "LinesShipped", n)

    def flush(self, *, force: bool = False) -> int:
        """Ship every queued chunk whose retry time has come (all of them when force)."""
        shipped = 0
        for out in self.outputs.values():
            while True:
                result = out.ship_one(self.now(), force=force)
                if result is None:
                    break
                self._shipped(out, result)
                if result.error:
                    break
                shipped += 1
        return shipped

    def seal_all(self) -> None:
        for out in self.outputs.values():
            out.buffer.seal_due(self.now(), force=True)

    def _flusher(self, mid: str) -> None:
        out = self.outputs[mid]
        wake = self._wake[mid]
        while not self._stop.is_set():
            result = out.ship_one(self.now())
            if result is not None:
                self._shipped(out, result)
                if not result.error:
                    continue
            wait = self.config.system.poll_interval * 4
            if out.failures:
                wait = max(min(out.next_try - self.now(), wait), 0.01)
            wake.wait(wait)
            wake.clear()

    # --- running ----------------------------------------------------------------------------------

    def idle(self) -> bool:
        """Every file read to its end and every line committed."""
        return all(s.tailer.idle() for s in self.sources)

    def pending(self) -> bool:
        """Chunks not yet shipped."""
        return any(not out.buffer.empty() for out in self.outputs.values())

    def _finish_partials(self) -> None:
        """--drain: the files are complete, so a last line without a newline is a line."""
        now = self.now()
        for src in self.sources:
            reads = [r for w in list(src.tailer.watchers.values()) if (r := src.tailer.final_partial(w))]
            if reads:
                self._commit(src, reads, now)

    def run(
        self, stop: threading.Event | None = None, *, drain: bool = False, shutdown_timeout: float = 30.0
    ) -> bool:
        """Work until `stop` is set (or, with drain, until everything is read and shipped).

        Returns True when every buffered line was shipped before returning."""
        stop = stop or threading.Event()
        self.start()
        bind = self.config.system.monitor_bind
        if bind:
            self.monitor = MonitorServer(bind, lambda: self._snapshot)
            self.monitor.start()
            log.info("monitor listening on %s (/metrics, /api/status)", self.monitor.address)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._flusher, args=(mid,), name=f"flush-{mid}", daemon=True)
            for mid in self.outputs
        ]
        for t in self._threads:
            t.start()
        if self.reporter is not None:
            self.reporter.start()
        try:
            while not stop.is_set():
                worked = self.step()
                if drain and not worked and self.idle():
                    self._finish_partials()
                    self.seal_all()
                    for w in self._wake.values():
                        w.set()
                    if not self.pending():
                        break
                if not worked:
                    stop.wait(self.config.system.poll_interval)
        finally:
            done = self.shutdown(shutdown_timeout)
        return done

    def shutdown(self, timeout: float) -> bool:
        """Stop reading; ship what flush_at_shutdown asks for, for at most `timeout` seconds."""
        deadline = self.now() + timeout
        for out in self.outputs.values():
            if out.conf.flush_at_shutdown:
                out.buffer.seal_due(self.now(), force=True)
                self._wake[out.conf.id].set()
        if self._threads:
            while self.now() < deadline and any(out.buffer.queued for out in self.outputs.values()):
                self._stop.wait(0.05)
            self._stop.set()
            for w in self._wake.values():
                w.set()
            for t in self._threads:
                t.join(timeout=5)
            self._threads = []
        if self.reporter is not None:
            self.reporter.stop()  # sends what was counted, shipped lines included
        self._refresh_status(self.now(), write=True, state="stopped")
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        for src in self.sources:
            src.tailer.close()
        for out in self.outputs.values():
            out.buffer.close()
        self.locks.release()
        self.started = False
        return not self.pending()

    # --- status ------------------------------------------------------------------------------------

    def _refresh_status(self, now: float, *, write: bool, state: str = "running") -> None:
        sources = []
        for src in self.sources:
            src.stats.lag_bytes = src.tailer.lag()
            src.stats.files = len(src.tailer.watchers)
            sources.append(src.stats.as_dict())
        self._snapshot = {
            "pid": os.getpid(),
            "hostname": self.config.system.hostname,
            "config": self.config.origin,
            "updated": now,
            "state": state,
            "sources": sources,
            "outputs": [out.status(now) for out in self.outputs.values()],
        }
        self._next_status = now + self.config.system.status_interval
        if write:
            try:
                write_status(self.config.system.state_dir / "status.json", self._snapshot)
            except OSError as exc:
                log.warning("cannot write the status file: %s", exc)

    def status(self) -> dict[str, Any]:
        """The latest status document (sources, outputs), refreshed now."""
        self._refresh_status(self.now(), write=False)
        return self._snapshot


def _merge(parts: list[Part]) -> list[Part]:
    """One part per (tag, slice): several reads of a batch often land in the same chunk."""
    merged: dict[tuple[str, str], Part] = {}
    for p in parts:
        old = merged.get((p.tag, p.slice))
        merged[(p.tag, p.slice)] = (
            p if old is None else replace(old, data=old.data + p.data, lines=old.lines + p.lines)
        )
    return list(merged.values())


def _text(raw: bytes, limit: int) -> str:
    return raw[:limit].decode("utf-8", "backslashreplace")
