"""The data directory is the service user's alone: the database, the key file, credentials,
logs and the embedded object store hold other owners' data and the server's secrets.

New files get mode 0600 and directories 0700 through the process umask; an existing home (from
an earlier version, or created with a looser umask) is fixed on start: the top level every
time, the whole tree once (a marker file records that it was done).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077
MARKER = ".private-v1"
OURS = (
    "tailrace.db",
    "tailrace.db-wal",
    "tailrace.db-shm",
    "secret.key",
    "credentials.json",
    "logs",
    "s3",
    "work",
    "tmp",
    "agent",
    "warehouse",
    "demo",
    MARKER,
)
"""What tailrace keeps in a home: only these are changed (a home pointed at a directory that
holds other things leaves those things alone)."""


def restrict_umask() -> None:
    """Files this process (and the commands it starts) creates: owner-only."""
    os.umask(UMASK)


def secure_home(home: Path) -> int:
    """Make `home` and what tailrace keeps in it readable by its owner only; returns how many
    modes changed. A shared directory given as the home (/, /tmp, the user's home directory)
    keeps its own mode."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = 0 if _shared(home) else _fix(home)
    ours = [home / name for name in OURS]
    marker = home / MARKER
    if marker.exists():
        for entry in ours:
            changed += _fix(entry)
        return changed
    for entry in ours:
        changed += _fix(entry)
        if entry.is_dir() and not entry.is_symlink():
            for root, dirs, files in os.walk(entry):
                for name in (*dirs, *files):
                    changed += _fix(Path(root) / name)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    except OSError:
        pass
    if changed:
        log.warning("made %d file(s) and folder(s) under %s readable by their owner only", changed, home)
    return changed


def _shared(home: Path) -> bool:
    resolved = home.resolve()
    shared = {Path("/"), Path.home().resolve(), Path("/tmp"), Path("/var/tmp"), Path("/home")}
    return resolved in shared


def _fix(path: Path) -> int:
    try:
        st = path.lstat()
    except OSError:
        return 0
    if stat.S_ISLNK(st.st_mode):
        return 0  # a link's own mode means nothing; its target is not ours to change
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 == 0:
        return 0
    # Group and others lose everything; the owner keeps what it had (an executable stays one).
    want = 0o700 if stat.S_ISDIR(st.st_mode) else (mode & 0o700) or 0o600
    try:
        os.chmod(path, want)
    except OSError as exc:  # not ours (another user's file): say so, do not stop the service
        log.warning("cannot restrict the mode of %s: %s", path, exc.strerror or exc)
        return 0
    return 1
