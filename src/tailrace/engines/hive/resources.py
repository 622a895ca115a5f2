"""Memory, threads and spill files of DuckDB runs, shared by every run on one host.

A host has one budget (`[duckdb] host_memory`, default half the machine's memory) and a number
of slots (`[duckdb] concurrent`, default the `workers` setting). A run holds one slot while it
runs and gets DuckDB's memory_limit = budget / slots (or `memory_limit` when set), so the runs
of every process on the host together stay within the budget; a run that finds every slot taken
waits for one. Slots are `flock`ed files in the spill root: the kernel frees a slot when its
process dies, so a killed worker leaks nothing, and `tailrace hive`, `tailrace up` and separate
`tailrace worker` processes count against one budget without talking to each other.

Why fixed shares rather than "what is left": DuckDB's limit cannot be changed once the sandbox
locks the configuration, so a run's share is settled when it starts; an equal share also makes a
run spill the same way whatever else runs beside it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tailrace.config import DuckDBSettings, parse_size
from tailrace.errors import TailraceError

WAIT_POLL = 0.2
"""Seconds between looks for a free slot."""


class SlotWaitCancelled(TailraceError):
    """The run was canceled while it waited for a slot."""


def machine_memory() -> int:
    """Bytes of memory this process may use: the smaller of RAM and the cgroup's limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


@dataclass(frozen=True, kw_only=True)
class RunLimits:
    """What one DuckDB connection is set to (HiveEngine applies it before locking the config)."""

    memory_limit: int | None = None
    """Bytes; None: DuckDB's default (80% of RAM)."""
    threads: int | None = None
    temp_directory: Path | None = None
    """This run's own spill directory (the engine removes it on close); None: the work dir."""
    max_temp_size: int | None = None
    decompress_gzip: bool = True


class Grant:
    """One run's slot and limits; release() frees the slot and removes the spill directory."""

    def __init__(self, limits: RunLimits, slot: IO[bytes] | None) -> None:
        self.limits = limits
        self._slot = slot
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            slot, self._slot = self._slot, None
        if slot is not None:
            slot.close()  # closing the descriptor drops the flock
        if self.limits.temp_directory is not None:
            shutil.rmtree(self.limits.temp_directory, ignore_errors=True)


class DuckDBResources:
    """The host's DuckDB budget, from [duckdb] settings; acquire() one Grant per run."""

    def __init__(self, settings: DuckDBSettings, *, home: Path, workers: int) -> None:
        self.settings = settings
        self.root = (settings.temp_directory or home / "spill").resolve()
        self.slots = settings.concurrent or max(1, workers)
        machine = machine_memory()
        size, share = parse_size(settings.host_memory, "host_memory", percent=True)
        self.host_memory = size if size is not None else int(machine * (share or 0.5))
        if settings.memory_limit is not None:
            size, share = parse_size(settings.memory_limit, "memory_limit", percent=True)
            self.per_run = size if size is not None else int(machine * (share or 0.0))
        else:
            self.per_run = self.host_memory // self.slots
        self.max_temp_size = (
            parse_size(settings.max_temp_size, "max_temp_size")[0] if settings.max_temp_size else None
        )

    def describe(self) -> str:
        return (
            f"{_gib(self.per_run)} per run, {self.slots} runs at once on this host "
            f"(host budget {_gib(self.host_memory)}), spill under {self.root}"
        )

    def acquire(
        self,
        owner: str,
        *,
        threads: int | None = None,
        cancelled: threading.Event | None = None,
        say: Callable[[str], None] | None = None,
    ) -> Grant:
        """Wait for a free slot (until `cancelled` is set), then make the run's spill directory.

        :raises SlotWaitCancelled: when canceled while waiting."""
        slot = self._take_slot(cancelled, say)
        try:
            spill = self.root / "runs" / _safe(owner) / uuid.uuid4().hex[:16]
            spill.mkdir(parents=True, mode=0o700)
            for parent in (self.root, self.root / "runs", spill.parent):
                os.chmod(parent, 0o700)  # one owner's spill files are no other user's business
        except OSError as exc:
            slot.close()
            raise TailraceError(f"[duckdb] temp_directory {self.root} cannot be used: {exc}") from exc
        limits = RunLimits(
            memory_limit=self.per_run,
            threads=threads or self.settings.threads,
            temp_directory=spill,
            max_temp_size=self.max_temp_size,
            decompress_gzip=self.settings.decompress_gzip,
        )
        return Grant(limits, slot)

    def _take_slot(self, cancelled: threading.Event | None, say: Callable[[str], None] | None) -> IO[bytes]:
        folder = self.root / "slots"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        told = False
        while True:
            for i in range(self.slots):
                fh = (folder / f"{i}.lock").open("ab")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    continue
                return fh
            if cancelled is not None and cancelled.is_set():
                raise SlotWaitCancelled("canceled while waiting for a free DuckDB slot")
            if not told and say is not None:
                say(
                    f"waiting: all {self.slots} DuckDB runs this host allows are busy "
                    "([duckdb] concurrent in tailrace.toml)"
                )
                told = True
            time.sleep(WAIT_POLL)


def _safe(owner: str) -> str:
    # A directory name of its own: no separators, never "." or "..".
    return re.sub(r"[^A-Za-z0-9_.-]", "_", owner).lstrip(".") or "_local"


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"
