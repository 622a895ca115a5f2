"""Who a shell-like step runs as, with what environment, in which directory.

An owner's command on the service gets: an allow-listed environment (never the server's
variables or keys), a private directory made for the attempt (mode 0700, owned by the run-as
user) outside `$TAILRACE_HOME`, and, when the server is root, an unprivileged OS user mapped
to the owner (`[execution]` in tailrace.toml). What it leaves in its output directories is
collected without following links and only when the run-as user owns it. Run as another user by
a root server, it also gets new network and mount namespaces (`[execution] network`): trust-auth
databases and unpassworded caches on the host's loopback or sockets are out of its reach.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tailrace.config import ExecutionSettings
from tailrace.errors import TailraceError

log = logging.getLogger(__name__)

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_THROUGH = ("LANG", "TZ")
"""Server variables a command still sees (with every LC_*): the locale and time zone only."""


class ExecutionRefused(TailraceError):
    """This server will not run an owner's shell-like step (and says how to configure it)."""


@dataclass(frozen=True, kw_only=True)
class Identity:
    user: str
    uid: int
    gid: int
    isolated: bool = False
    """Run in new network and mount namespaces (see runtime/shell.py): no host network, own /tmp and /run."""


@dataclass(frozen=True, kw_only=True)
class Execution:
    """How one owner's shell-like steps run. identity None: as the server's own user."""

    identity: Identity | None
    work_root: Path
    owner: str


def identity_of(user: str) -> Identity:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ExecutionRefused(
            f"OS user '{user}' (from [execution] in tailrace.toml) does not exist on this host; "
            f"create it (e.g. `useradd --system --no-create-home {user}`) or map the owner to another"
        )
    return Identity(user=user, uid=entry.pw_uid, gid=entry.pw_gid)


def default_work_root(home: Path) -> Path:
    """Outside $TAILRACE_HOME (which the run-as users must not traverse), one per data directory."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"tailrace-attempts-{digest}"


def plan_execution(
    settings: ExecutionSettings, *, owner: str, owners: int, home: Path, euid: int | None = None
) -> Execution:
    """The identity of `owner`'s commands, or ExecutionRefused saying how to configure it.

    Rules: a mapped owner runs as its user; with one owner (or none yet) the `run_as` user
    (default "nobody" when the server is root); with several owners an unmapped owner is refused
    (they would share one OS user and could read each other's running attempts). Root only with
    `allow_root = true`.
    """
    euid = os.geteuid() if euid is None else euid
    work_root = settings.work_root or default_work_root(home)
    user = settings.users.get(owner)
    if user is None and owners > 1:
        raise ExecutionRefused(
            f"shell-like activities are refused: this server has {owners} owners and no OS user is "
            f"mapped to owner '{owner}'. Add to tailrace.toml:\n  [execution.users]\n  "
            f'"{owner}" = "tr-{owner[:20]}"   # an unprivileged user of its own (useradd --system ...)\n'
            "then restart; see docs/security.md"
        )
    if user is None:
        user = settings.run_as or ("nobody" if euid == 0 else None)
    if user is None:
        return Execution(identity=None, work_root=work_root, owner=owner)
    ident = identity_of(user)
    if ident.uid == 0 and not settings.allow_root:
        raise ExecutionRefused(
            f"shell-like activities are refused: owner '{owner}' maps to '{user}', which is root; "
            "set allow_root = true under [execution] if that is really meant"
        )
    if euid != 0 and ident.uid != euid:
        raise ExecutionRefused(
            f"shell-like activities are refused: owner '{owner}' maps to OS user '{user}', but the "
            "server is not root and cannot switch users (run it as root, or map to its own user)"
        )
    if ident.uid == euid:
        return Execution(identity=None, work_root=work_root, owner=owner)
    isolate = settings.network == "none" or (settings.network == "auto" and euid == 0)
    if isolate and not namespaces_work():
        if settings.network == "none":
            raise ExecutionRefused(
                'shell-like activities are refused: [execution] network = "none" but this host cannot '
                'create network namespaces (`unshare --net --mount` failed); set network = "host" '
                "to run them on the host's network"
            )
        isolate = False  # auto: say so once at start-up (processes.py), run on the host network
    return Execution(identity=dataclasses.replace(ident, isolated=isolate), work_root=work_root, owner=owner)


@functools.cache
def namespaces_work() -> bool:
    """Whether this process can give a command new network and mount namespaces."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return False
    try:
        done = subprocess.run(
            [unshare, "--net", "--mount", "--", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning(
            "cannot create namespaces for shell-like activities (%s); they use the host's network", exc
        )
        return False
    if done.returncode != 0:
        log.warning(
            "cannot create namespaces for shell-like activities (unshare: %s); they use the host's "
            'network: set [execution] network = "none" to refuse them instead',
            done.stderr.decode(errors="replace").strip(),
        )
    return done.returncode == 0


def scrubbed_env(
    *, home: Path, extra: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed environment: PATH, locale, TZ, HOME (the attempt directory), and `extra`
    (the staging variables, pipeline and instance ids)."""
    source = os.environ if environ is None else environ
    env = {"PATH": SAFE_PATH, "HOME": str(home), "TMPDIR": str(home), "PWD": str(home)}
    for key, value in source.items():
        if key in PASSED_THROUGH or key.startswith("LC_"):
            env[key] = value
    env.update(extra)
    return env


def _secure_root(root: Path) -> None:
    """The parent of attempt directories: ours, not a link, not writable by others; 0711 so a
    run-as user reaches its own directory but cannot list the others."""
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ExecutionRefused(f"attempt directory root {root} is not a directory owned by the server's user")
    os.chmod(root, 0o711)


def make_attempt_dir(execution: Execution) -> Path:
    """A new private directory (0700) owned by the run-as user, under a name nobody can guess."""
    _secure_root(execution.work_root)
    path = execution.work_root / uuid.uuid4().hex
    path.mkdir(mode=0o700)
    give(path, execution)
    return path


def give(path: Path, execution: Execution) -> None:
    """Hand path (recursively, never following links) to the run-as user."""
    ident = execution.identity
    if ident is None:
        return
    os.chown(path, ident.uid, ident.gid, follow_symlinks=False)
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), ident.uid, ident.gid, follow_symlinks=False)


def collect_output(source: Path, target: Path, execution: Execution) -> int:
    """Copy what the command left in an output directory to a server-private target: regular
    files only (no links, devices or fifos), each opened without following links and, when the
    command ran as another user, owned by that user with a single link. Anything else fails the
    attempt rather than being uploaded (a link could name the server's secrets)."""
    ident = execution.identity
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(source, follow_symlinks=False):
        rel_dir = Path(dirpath).relative_to(source)
        for name in filenames:
            rel = rel_dir / name
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError as exc:
                raise ExecutionRefused(
                    f"output file {rel} cannot be collected ({exc.strerror}): links are not followed"
                )
            with os.fdopen(fd, "rb") as src:
                st = os.fstat(src.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise ExecutionRefused(f"output {rel} is not a regular file; only files are uploaded")
                if ident is not None and (st.st_uid != ident.uid or st.st_nlink != 1):
                    raise ExecutionRefused(
                        f"output file {rel} was not written by the activity's user (or is a hard link); refused"
                    )
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            count += 1
        # Links to directories are reported among dirnames by fwalk and not entered: refuse them.
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                raise ExecutionRefused(f"output {rel_dir / name} is a link; only files are uploaded")
    return count


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass(kw_only=True)
class ShellPlace:
    """Where and as whom one shell-like step runs; `private` when the directory is the attempt's
    own (and is removed afterwards)."""

    cwd: Path
    identity: Identity | None
    execution: Execution | None
    base_env: dict[str, str]

    @property
    def private(self) -> bool:
        return self.execution is not None

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        return {**self.base_env, **extra}

    def hand_over(self, path: Path) -> None:
        if self.execution is not None:
            give(path, self.execution)

    def collect(self, source: Path, target: Path) -> Path:
        """The output directory as the server should upload it (a private copy when isolated)."""
        if self.execution is None:
            return source
        collect_output(source, target, self.execution)
        return target

    def close(self) -> None:
        if self.private:
            remove_tree(self.cwd)


def shell_place(execution: Execution | None, work_dir: Path) -> ShellPlace:
    """Isolated (a private attempt directory, scrubbed environment, run-as user) when the
    service gave an Execution; otherwise the single-user way: work_dir and the caller's env."""
    if execution is None:
        return ShellPlace(cwd=work_dir, identity=None, execution=None, base_env=dict(os.environ))
    cwd = make_attempt_dir(execution)
    return ShellPlace(
        cwd=cwd, identity=execution.identity, execution=execution, base_env=scrubbed_env(home=cwd, extra={})
    )
