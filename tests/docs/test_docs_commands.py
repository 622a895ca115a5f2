"""Every shell command the README and docs/*.md show works, as a newcomer would type it.

The test reads every fenced ```sh block of README.md and of whatever docs/*.md exist, and runs
their commands in order, README first, with bash, in a fresh directory that is not the clone:
a new working directory (whose ./.tailrace is the data directory), a new $HOME (so
~/.tailrace/config starts empty) and no TAILRACE_* or AWS_* variables. `tailrace` is this
checkout's code. Before the first block it runs `tailrace demo`, the command `scripts/demo`
ends with (the README's tour follows the demo).

What the harness changes, and nothing else:
- a command ending in `&` starts in the background; `tailrace up &` is waited for until it
  listens, and everything started is stopped at the end;
- the documented ports 8040 (API) and 8041 (S3) become free ports (also for a plain `tailrace up`,
  through TAILRACE_PORT and TAILRACE_S3_PORT), so that parallel test runs
  do not collide;
- the docs' placeholders are filled: `df-...` with the pipeline the README's tour created,
  `TRK...` / `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...` with the key `tailrace up`
  saved, `ACCOUNT` with that key's account number;
- shell variables (`PID=$(...)`, `export ...`) carry over from one command to the next within
  one file.

A block the test must not run is marked in the Markdown, on the line before its fence, with
`<!-- not-run: REASON -->`; the reasons are listed in the test's output (pytest -rs). A block
that shows an error is marked `<!-- fails -->`: each of its commands must exit non-zero, with
the `# tailrace: error: ...` line the block shows in its stderr. Blocks without the `sh` tag
(output, illustrations) are not commands.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(?P<tag>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>.+?)\s*-->\s*$")
FAILS = re.compile(r"<!--\s*fails\s*-->\s*$")
SHOWN_ERROR = re.compile(r"^#\s*(tailrace: error: .+)$", re.M)
BACKGROUND = re.compile(r"&\s*(#.*)?$")
COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    commands: tuple[tuple[int, str], ...]
    not_run: str | None
    fails: str | None = None
    """For a block marked `<!-- fails -->`: the error it shows (every command must fail)."""

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def split_commands(body: str, first_line: int) -> list[tuple[int, str]]:
    """(line number, command) for each command: `\\` continuations joined, heredocs kept whole,
    blank lines and comment lines left out."""
    out: list[tuple[int, str]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        start, text = first_line + i, lines[i]
        if not text.strip() or text.lstrip().startswith("#"):
            i += 1
            continue
        while (text.endswith("\\") or _open_quote(text)) and i + 1 < len(lines):
            i += 1
            text += "\n" + lines[i]
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", text)
        if heredoc:
            end = heredoc.group(1)
            while i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i]
                if lines[i].strip() == end:
                    break
        out.append((start, text))
        i += 1
    return out


def _open_quote(text: str) -> bool:
    """True when a quoted string goes on to the next line (a multi-line SQL string)."""
    if re.search(r"<<-?\s*'?\"?\w+", text):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def _shown_error(body: str) -> str:
    shown = SHOWN_ERROR.search(body)
    return shown.group(1) if shown else "tailrace: error:"


def blocks() -> list[Block]:
    found: list[Block] = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group("tag") != "sh":
                continue
            line = text.count("\n", 0, m.start()) + 1
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            reason = NOT_RUN.search(before)
            found.append(
                Block(
                    doc=path.relative_to(REPO).as_posix(),
                    line=line,
                    commands=tuple(split_commands(m.group("body"), line + 1)),
                    not_run=reason.group("reason") if reason else None,
                    fails=_shown_error(m.group("body")) if FAILS.search(before) else None,
                )
            )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    """One newcomer's shell: a working directory, a home, background processes, variables."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.user = root / "user"
        self.bin = root / "bin"
        for d in (self.work, self.user, self.bin):
            d.mkdir()
        launcher = self.bin / "tailrace"
        launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m tailrace "$@"\n')
        launcher.chmod(0o755)
        self.ports = {"8040": str(free_port()), "8041": str(free_port())}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_", "PYTHON"))}
        env.update(
            HOME=str(self.user),
            PATH=os.pathsep.join([str(self.bin), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            PYTHONPATH=str(REPO / "src"),
            TAILRACE_PORT=self.ports["8040"],
            TAILRACE_S3_PORT=self.ports["8041"],  # `tailrace up` serves S3 on 8041 by default
            TZ="UTC",
        )
        self.env = env
        self.background: list[subprocess.Popen[bytes]] = []
        self.placeholders: dict[str, str] = {}

    def state_file(self, doc: str) -> Path:
        return self.user.parent / f"vars-{doc.replace('/', '_')}.sh"

    def prepare(self, command: str) -> str:
        for documented, port in self.ports.items():
            command = command.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{port}")
            command = re.sub(rf"(--port)(\s+){documented}\b", rf"\g<1>\g<2>{port}", command)
        for placeholder, value in self.placeholders.items():
            command = command.replace(placeholder, value)
        return command

    def script(self, doc: str, command: str) -> str:
        state = shlex.quote(str(self.state_file(doc)))
        return (
            f"set -a; [ -f {state} ] && . {state}\n"
            f"{command}\n"
            f"rc=$?; export -p | grep -v -E ' (OLDPWD|PWD|SHLVL|_)=' > {state}; exit $rc\n"
        )

    def run(self, doc: str, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", self.script(doc, self.prepare(command))],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    def start(self, doc: str, command: str) -> str | None:
        """Start a background command; wait for `tailrace up` to listen. None, or what went wrong."""
        command = BACKGROUND.sub("", self.prepare(command)).strip()
        log = self.user.parent / f"background-{len(self.background)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", self.script(doc, "exec " + command)],
                cwd=self.work,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.background.append(proc)
        port = self.ports["8041"] if "s3 serve" in command else self.ports["8040"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            return f"did not listen on port {port} within 60 s:\n{log.read_text(errors='replace')[-3000:]}"
        if command.startswith("tailrace up"):
            return self._learn_key(proc, log)
        return None

    def _learn_key(self, proc: subprocess.Popen[bytes], log: Path) -> str | None:
        """Read the key `tailrace up` saved for local clients (written as it starts serving)."""
        from tailrace.notify.arns import account_for

        path = self.work / ".tailrace" / "credentials.json"
        deadline = time.monotonic() + 30
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if not path.exists():
            return f"saved no key in {path}:\n{log.read_text(errors='replace')[-3000:]}"
        creds = json.loads(path.read_text())
        self.placeholders.update(
            {
                "AWS_ACCESS_KEY_ID=...": f"AWS_ACCESS_KEY_ID={creds['AccessKeyId']}",
                "AWS_ACCESS_KEY_ID=TRK...": f"AWS_ACCESS_KEY_ID={creds['AccessKeyId']}",
                "AWS_SECRET_ACCESS_KEY=...": f"AWS_SECRET_ACCESS_KEY={creds['SecretAccessKey']}",
                ":ACCOUNT:": f":{account_for(creds['Owner'])}:",
            }
        )
        return None

    def learn_pipeline(self, doc: str) -> None:
        state = self.state_file(doc)
        found = re.search(r"PID=\"?(df-[A-Z0-9]+)", state.read_text()) if state.exists() else None
        if found:
            self.placeholders["df-..."] = found.group(1)

    def close(self) -> None:
        for proc in reversed(self.background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    s = Session(tmp_path_factory.mktemp("newcomer"))
    try:
        demo = s.run("(setup)", "tailrace demo")
        assert demo.returncode == 0, f"`tailrace demo` failed:\n{demo.stderr[-3000:]}"
        yield s
    finally:
        s.close()


def test_harness_finds_blocks_and_markers() -> None:
    found = blocks()
    assert any(b.doc == "README.md" and b.commands for b in found)
    # The marker is on the line before the fence; an untagged block is never a command block.
    text = "x\n<!-- not-run: needs a GPU -->\n```sh\nrun --it\n```\n```\nnot a command\n```\n"
    parsed = [m for m in FENCE.finditer(text)]
    assert [m.group("tag") for m in parsed] == ["sh", ""]
    assert NOT_RUN.search(text[: parsed[0].start()].rstrip("\n").rsplit("\n", 1)[-1])
    assert split_commands("a \\\n  b\n# c\n\ncat <<'EOF'\nx\nEOF\nd &   # bg\ne 'x\ny'\n", 1) == [
        (1, "a \\\n  b"),
        (5, "cat <<'EOF'\nx\nEOF"),
        (8, "d &   # bg"),
        (9, "e 'x\ny'"),
    ]


@pytest.mark.parametrize("block", blocks(), ids=lambda b: b.id)
def test_docs_command_block_runs(block: Block, session: Session) -> None:
    if block.not_run:
        pytest.skip(f"{block.id}: not run: {block.not_run}")
    for line, command in block.commands:
        where = f"{block.doc}:{line}: `{command}`"
        if BACKGROUND.search(command.splitlines()[-1]):
            problem = session.start(block.doc, command)
            assert problem is None, f"{where} (in the background) {problem}"
            continue
        try:
            done = session.run(block.doc, command)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{where} did not finish within {COMMAND_TIMEOUT:.0f} s")
        if block.fails is not None:
            assert done.returncode != 0 and block.fails in done.stderr, (
                f"{where} should fail with {block.fails!r} as the docs show; it exited {done.returncode}"
                f"\n--- stderr ---\n{done.stderr[-3000:]}"
            )
            continue
        assert done.returncode == 0, (
            f"{where} exited {done.returncode}\n--- stdout ---\n{done.stdout[-3000:]}"
            f"\n--- stderr ---\n{done.stderr[-3000:]}"
        )
        session.learn_pipeline(block.doc)
