"""Running a command for an attempt: output streamed to the log, cancel and timeout honoured."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tailrace.runtime.context import LogSink
from tailrace.runtime.sandbox import Identity

CHUNK = 64 * 1024
MAX_LINE = 64 * 1024
"""A longer line reaches the log in pieces of this size."""
TAIL_LINES = 20
TAIL_LINE = 2000
"""The result keeps the last TAIL_LINES lines, each cut to its last TAIL_LINE characters."""


@dataclass(frozen=True, kw_only=True)
class ShellResult:
    returncode: int
    stdout_tail: str
    stderr_tail: str
    timed_out: bool = False
    cancelled: bool = False


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: LogSink,
    cancelled: threading.Event,
    heartbeat: Callable[[], None],
    timeout: float | None = None,
    stdout_file: Path | None = None,
    stderr_file: Path | None = None,
    identity: Identity | None = None,
) -> ShellResult:
    """Run argv in its own process group; kill the group on cancel or timeout. With `identity`,
    as that OS user (its own group, no supplementary groups, umask 077)."""
    switch: dict[str, object] = {}
    if identity is not None and identity.isolated:
        argv = _isolated(identity, argv, cwd)  # root sets up the namespaces, then setpriv switches user
    elif identity is not None:
        switch = {"user": identity.uid, "group": identity.gid, "extra_groups": [], "umask": 0o077}
        argv = _with_parent_death_signal(list(argv))
    else:
        argv = _with_parent_death_signal(list(argv))
    proc = subprocess.Popen(  # type: ignore[call-overload]
        argv,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        **switch,
    )
    tails: dict[str, list[str]] = {"stdout": [], "stderr": []}
    sinks = {"stdout": stdout_file, "stderr": stderr_file}

    def pump(name: str, stream: object) -> None:
        # Read in chunks, not lines: a command printing one endless line (or gigabytes) must not
        # grow this process. Lines longer than MAX_LINE are passed on in pieces.
        sink = sinks[name]
        out = sink.open("ab") if sink else None
        prefix = "" if name == "stdout" else "[stderr] "
        tail = tails[name]

        def emit(raw: bytes) -> None:
            text = raw.decode("utf-8", "replace")
            log.write(prefix + text)
            tail.append(text[-TAIL_LINE:])
            if len(tail) > TAIL_LINES:
                del tail[0]

        pending = b""
        try:
            while chunk := stream.read1(CHUNK):  # type: ignore[attr-defined]
                if out is not None:
                    out.write(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    emit(line + b"\n")
                while len(pending) > MAX_LINE:
                    emit(pending[:MAX_LINE] + b"\n")
                    pending = pending[MAX_LINE:]
            if pending:
                emit(pending)
        finally:
            if out is not None:
                out.close()

    threads = [
        threading.Thread(target=pump, args=("stdout", proc.stdout), daemon=True),
        threading.Thread(target=pump, args=("stderr", proc.stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    started = time.monotonic()
    timed_out = was_cancelled = False
    last_beat = started
    while True:
        try:
            proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now - last_beat >= 5:
            heartbeat()
            last_beat = now
        if cancelled.is_set():
            was_cancelled = True
        elif timeout is not None and now - started > timeout:
            timed_out = True
        if was_cancelled or timed_out:
            _kill_group(proc)
            proc.wait()
            break
    # A grandchild that left the group may hold the pipes open: stop reading after a moment.
    for t in threads:
        t.join(timeout=1 if was_cancelled or timed_out else 5)
    return ShellResult(
        returncode=proc.returncode,
        stdout_tail="".join(tails["stdout"]),
        stderr_tail="".join(tails["stderr"]),
        timed_out=timed_out,
        cancelled=was_cancelled,
    )


_SETPRIV = shutil.which("setpriv")


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """Make the command die with the worker that started it (Linux `setpriv --pdeathsig`), so a
    worker killed with -9 does not leave its command running while the attempt is retried."""
    if _SETPRIV and sys.platform.startswith("linux"):
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    return argv


_MASK = "mount -t tmpfs -o mode={mode},nosuid,nodev tmpfs {path} || exit 126; "
_SWITCH = 'umask 077; u=$1; g=$2; shift 2; exec "$0" --reuid="$u" --regid="$g" --clear-groups --pdeathsig KILL -- "$@"'


def _isolated(identity: Identity, argv: Sequence[str], cwd: Path) -> list[str]:
    """argv run by root in new network and mount namespaces, as `identity`, dying with its parent.

    The network namespace has only its own loopback. New, empty /run and /tmp hide the host's
    database and cache sockets (PostgreSQL's /run/postgresql, MariaDB's /run/mysqld, sockets in
    /tmp) and other attempts' files; /tmp stays the host's when the attempt directory is in it."""
    masks = [("/run", "755")] + ([] if cwd.resolve().is_relative_to("/tmp") else [("/tmp", "1777")])
    script = "".join(_MASK.format(path=p, mode=m) for p, m in masks) + _SWITCH
    unshare = shutil.which("unshare") or "unshare"
    setpriv = _SETPRIV or "setpriv"
    return [
        unshare, "--net", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", script, setpriv, str(identity.uid), str(identity.gid), *argv,
    ]  # fmt: skip


TERM_WAIT = 3.0
"""Seconds a canceled command's process group has between SIGTERM and SIGKILL."""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=TERM_WAIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
