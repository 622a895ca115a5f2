"""Helpers for the agent tests: configs, a frozen clock, log writers, and reading what was shipped."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tailrace.agent.configfile import parse_config
from tailrace.agent.core import Agent
from tailrace.clock import FrozenClock
from tailrace.sample.accesslog import Hit, combined_line, hits
from tailrace.storage import Storage

START = datetime(2024, 1, 15, 0, 0, tzinfo=UTC)


def sample_hits(n: int, *, seed: int = 7, start: datetime = START, per_hour: int = 3600) -> list[Hit]:
    out = []
    for h in hits(start, start + timedelta(days=60), per_hour=per_hour, seed=seed):
        out.append(h)
        if len(out) == n:
            break
    return out


def sample_lines(n: int, **kw: Any) -> list[str]:
    return [combined_line(h) for h in sample_hits(n, **kw)]


def append(path: Path, lines: Iterable[str | bytes], *, newline: bool = True) -> None:
    with path.open("ab") as fh:
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            fh.write(data + (b"\n" if newline else b""))


class Env:
    """A scratch directory with a log dir, a TAILRACE_HOME-like home and an embedded store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.home = root / "home"
        self.home.mkdir()
        self.state = root / "state"
        self.storage = Storage(home=self.home)
        self.clock = FrozenClock(datetime(2024, 2, 1, tzinfo=UTC))
        self.log = self.logs / "access_log"

    def config(
        self,
        *,
        source: dict[str, Any] | None = None,
        match: dict[str, Any] | None = None,
        system: dict[str, Any] | None = None,
        sources: list[dict[str, Any]] | None = None,
    ) -> Any:
        src = {
            "type": "tail",
            "path": str(self.log),
            "pos_file": str(self.state / "access.pos"),
            "format": "apache2",
            "tag": "apache.access",
            "read_from_head": True,
            "rotate_wait": "5s",
            **(source or {}),
        }
        m = {
            "pattern": "apache.*",
            "type": "store",
            "path": "s3://memorycraft-log/logs/",
            "time_slice_format": "%Y%m%d/${hostname}-%H",
            "buffer_path": str(self.state / "buffer"),
            "flush_mode": "interval",
            "flush_interval": "5s",
            "store_as": "gzip",
            **(match or {}),
        }
        sysconf = {"state_dir": str(self.state), **(system or {})}
        data = {"source": sources if sources is not None else [src], "match": [m], "system": sysconf}
        return parse_config(data, origin="test.toml", home=self.home, hostname="web1")

    def agent(self, config: Any = None, **kw: Any) -> Agent:
        return Agent(config or self.config(), storage=kw.pop("storage", self.storage), clock=self.clock, **kw)

    def shipped(self, bucket: str = "memorycraft-log", prefix: str = "logs/") -> list[str]:
        """Every line in the shipped objects, in key order."""
        root = self.home / "s3" / bucket / prefix
        lines: list[str] = []
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            lines += data.decode().splitlines()
        return lines

    def objects(self, bucket: str = "memorycraft-log") -> list[str]:
        root = self.home / "s3" / bucket
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    def errors(self) -> list[dict[str, Any]]:
        import json

        out = []
        for path in sorted((self.state / "errors").rglob("*.log")):
            for line in path.read_text().splitlines():
                out.append(json.loads(line.split("\t", 2)[2]))
        return out


def run_until_idle(agent: Agent, clock: FrozenClock, *, rounds: int = 200) -> None:
    """Step until nothing is read, then seal and flush everything (a drained agent)."""
    for _ in range(rounds):
        if not agent.step():
            break
    clock.advance(60)
    agent.step()
    agent.seal_all()
    agent.flush(force=True)


def multiset(lines: Iterable[str]) -> Counter[str]:
    return Counter(lines)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


# --- an independent reference: fluentd's apache2 parser and out_file formatter in plain Python ---

_APACHE2 = re.compile(
    r'^(?P<host>[^ ]*) [^ ]* (?P<user>[^ ]*) \[(?P<time>[^\]]*)\] "(?P<method>\S+)'
    r'(?: +(?P<path>(?:[^"]|\\")*?)(?: +\S*)?)?" (?P<code>[^ ]*) (?P<size>[^ ]*)'
    r'(?: "(?P<referer>(?:[^"]|\\")*)" "(?P<agent>(?:[^"]|\\")*)")?$'
)


def _to_i(text: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def reference_apache2(line: str, tag: str = "apache.access") -> str | None:
    """The out_file line fluentd writes for one combined line (UTC machine), or None."""
    m = _APACHE2.match(line)
    if m is None:
        return None
    g = m.groupdict()
    t = datetime.strptime(g["time"], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)

    def dash(v: str | None) -> str | None:
        return None if v == "-" else v

    code = _to_i(g["code"])
    rec = {
        "host": dash(g["host"]),
        "user": dash(g["user"]),
        "method": g["method"],
        "path": g["path"],
        "code": code or None,
        "size": None if g["size"] == "-" else _to_i(g["size"]),
        "referer": dash(g["referer"]),
        "agent": dash(g["agent"]),
    }
    body = json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
    return f"{t.isoformat(timespec='seconds')}\t{tag}\t{body}"
