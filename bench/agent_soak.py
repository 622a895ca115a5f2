"""Soak test of `tailrace agent`: a writer appends N unique lines while the agent runs; the log is
rotated by rename (also while the agent is down), the agent is killed with SIGKILL at random
moments and restarted, and the S3 endpoint (moto's server, real boto3 over HTTP) is stopped for
a while. Afterwards the lines in the store must equal the lines written, each exactly once.

    .venv/bin/python bench/agent_soak.py                      # the full soak: 1,000,000 lines, 10 kills, 30 s outage
    .venv/bin/python bench/agent_soak.py --lines 50000 --kills 3 --outage 3

Exit status 0 when every line arrived exactly once. tests/agent/test_soak.py runs a short form.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = "[15/Jan/2024:10:00:00 +0000]"


def line_for(n: int) -> str:
    return f'10.0.{n % 250}.{n % 7 + 1} - - {STAMP} "GET /soak/{n} HTTP/1.1" 200 {n % 9000} "-" "soak/1.0"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Plan:
    lines: int = 1_000_000
    rate: float = 12_000.0
    """Lines per second the writer appends."""
    rotate_every: int = 120_000
    kills: int = 10
    outage: float = 30.0
    seed: int = 1
    log: list[str] = field(default_factory=list)

    def say(self, msg: str) -> None:
        self.log.append(msg)
        print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Writer(threading.Thread):
    """Appends line_for(0..N-1); rotates by rename, keeps writing to the old file briefly (as a
    web server does until it reopens its log). It never rotates while the agent is down: the one
    rotation of a down period is the killer's (the agent finds the file by inode, or, when it never
    saw it, among the rotated files written since its last commit)."""

    def __init__(self, path: Path, plan: Plan) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.plan = plan
        self.written = 0
        self.rotations = 0
        self.rotations_while_down = 0
        self.lock = threading.Lock()
        self.agent_down = False
        self.reopen = False

    @contextlib.contextmanager
    def lock_held(self) -> Iterator[None]:
        """Release the lock (already acquired) when the block ends."""
        try:
            yield
        finally:
            self.lock.release()

    def rotate(self) -> None:
        """Rename the log away (the caller holds the lock); the writer reopens after a few lines."""
        self.rotations += 1
        os.rename(self.path, self.path.with_name(f"{self.path.name}.{self.rotations}"))
        self.reopen = True
        self.late = 3

    def _write(self, fh: object, first: int, n: int) -> None:
        fh.write("".join(line_for(i) + "\n" for i in range(first, first + n)).encode())  # type: ignore[attr-defined]
        fh.flush()  # type: ignore[attr-defined]

    def run(self) -> None:
        fh = self.path.open("ab")
        start = time.monotonic()
        next_rotation = self.plan.rotate_every
        while self.written < self.plan.lines:
            with self.lock:
                n = min(1 if self.reopen else 200, self.plan.lines - self.written)
                self._write(fh, self.written, n)
                self.written += n
                if self.reopen:
                    self.late -= 1
                    if self.late <= 0:  # the server reopens its log
                        fh.close()
                        fh = self.path.open("ab")
                        self.reopen = False
                elif self.written >= next_rotation and not self.agent_down:
                    # A rotation skipped while the agent was down comes at once, often within
                    # one poll of the previous one: the agent must find the file it never saw.
                    next_rotation += self.plan.rotate_every
                    self.rotate()
            delay = start + self.written / self.plan.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        fh.close()


def write_config(work: Path, log: Path) -> Path:
    cfg = work / "agent.toml"
    cfg.write_text(
        f"""
[system]
state_dir = "{work / "state"}"
poll_interval = "0.1s"

[[source]]
path = "{log}"
pos_file = "{work / "state" / "access.pos"}"
format = "apache2"
tag = "apache.access"
read_from_head = true
rotate_wait = "2s"
read_block_size = "1m"

[[match]]
pattern = "apache.*"
path = "s3://soak-log/logs/"
time_slice_format = "%Y%m%d/${{hostname}}-%H"
flush_mode = "interval"
flush_interval = "1s"
chunk_limit_size = "512k"
retry_wait = "0.2s"
retry_max_interval = "2s"
store_as = "gzip"
"""
    )
    return cfg


def start_agent(cfg: Path, env: dict[str, str], out: Path, *, drain: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tailrace", "agent", "-c", str(cfg), "--hostname", "soak"]
    if drain:
        args.append("--drain")
    return subprocess.Popen(args, env=env, stdout=out.open("ab"), stderr=subprocess.STDOUT, cwd=REPO)


def wait_started(work: Path, agent: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the agent has opened its files (its first status file names its pid)."""
    status = work / "state" / "status.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(status.read_text()).get("pid") == agent.pid:
                return
        except (OSError, ValueError):
            pass
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with {agent.returncode} at start")
        time.sleep(0.02)
    raise RuntimeError("the agent did not start in time")


def shipped_counts(endpoint: str) -> Counter[int]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    counts: Counter[int] = Counter()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="soak-log", Prefix="logs/")
    for page in pages:
        for item in page.get("Contents", []):
            body = gzip.decompress(client.get_object(Bucket="soak-log", Key=item["Key"])["Body"].read())
            for line in body.decode().splitlines():
                path = json.loads(line.split("\t", 2)[2])["path"]
                counts[int(path.rsplit("/", 1)[1])] += 1
    return counts


def soak(plan: Plan, work: Path) -> dict[str, object]:
    """Run the soak in `work`; returns a report (ok, missing, duplicated, timings)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log
    rng = random.Random(plan.seed)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "soak")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "soak")
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "access_log"
    log.touch()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        **os.environ,
        "TAILRACE_HOME": str(work / "home"),
        "TAILRACE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "soak",
        "AWS_SECRET_ACCESS_KEY": "soak",
        "PYTHONPATH": str(REPO / "src"),
    }
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="soak-log")
    cfg = write_config(work, log)
    agent_log = work / "agent.log"
    writer = Writer(log, plan)
    started = time.monotonic()
    agent = start_agent(cfg, env, agent_log)
    # Writing starts once the agent watches the file: a file rotated away before an agent's first
    # scan is not its to read (as for fluentd's in_tail), and a slow start would otherwise lose
    # the first files of the soak by design, not by fault.
    wait_started(work, agent)
    writer.start()
    expected_writing = plan.lines / plan.rate
    outage_round = plan.kills // 2
    for k in range(plan.kills):
        time.sleep(rng.uniform(0.3, max(0.6, 2 * expected_writing / max(plan.kills, 1))))
        want_rotation = k % 3 == 1
        writer.lock.acquire()
        while want_rotation and writer.reopen:  # one rotation at a time: let the writer reopen
            writer.lock.release()
            time.sleep(0.005)
            writer.lock.acquire()
        with writer.lock_held():
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            writer.agent_down = True
            # The file rotated away may be one the agent never saw (created just before the
            # kill): the agent then finds it among the rotated files written since its last commit.
            rotate = want_rotation and not writer.reopen
            if rotate:
                writer.rotate()  # rotation while the agent is down: found again by inode
                writer.rotations_while_down += 1
        plan.say(
            f"kill {k + 1}/{plan.kills}: SIGKILL after {writer.written} lines written{', rotated while down' if rotate else ''}"
        )
        time.sleep(rng.uniform(0.05, 0.5))
        agent = start_agent(cfg, env, agent_log)
        wait_started(work, agent)
        writer.agent_down = False
        if k == outage_round and plan.outage > 0:
            server.stop()
            plan.say(f"S3 endpoint down for {plan.outage:g}s")
            time.sleep(plan.outage)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
            server.start()
            plan.say("S3 endpoint back")
    writer.join()
    plan.say(f"writer done: {writer.written} lines, {writer.rotations} rotations; draining")
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=120)
    final = start_agent(cfg, env, agent_log, drain=True)
    code = final.wait(timeout=900)
    elapsed = time.monotonic() - started
    counts = shipped_counts(endpoint)
    server.stop()
    missing = [n for n in range(plan.lines) if counts.get(n, 0) == 0]
    dups = {n: c for n, c in counts.items() if c > 1}
    extra = [n for n in counts if not 0 <= n < plan.lines]
    ok = not missing and not dups and not extra and code == 0
    plan.say(
        f"{'OK' if ok else 'FAILED'}: {sum(counts.values())} lines shipped for {plan.lines} written; "
        f"missing {len(missing)}, duplicated {len(dups)}, drain exit {code}, {elapsed:.0f}s"
    )
    return {
        "ok": ok,
        "written": writer.written,
        "shipped": sum(counts.values()),
        "missing": missing[:20],
        "duplicated": dict(list(dups.items())[:20]),
        "rotations": writer.rotations,
        "rotations_while_down": writer.rotations_while_down,
        "kills": plan.kills,
        "outage": plan.outage,
        "elapsed": elapsed,
        "agent_log": str(agent_log),
    }


def write_results(report: dict[str, object], plan: Plan) -> None:
    """Replace the soak's own section of bench/RESULTS.md."""
    path = REPO / "bench" / "RESULTS.md"
    begin, end = "<!-- agent-soak:begin -->", "<!-- agent-soak:end -->"
    verdict = "every line exactly once" if report["ok"] else "FAILED"
    text = "\n".join(
        [
            begin,
            "## tailrace agent soak (bench/agent_soak.py)",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M')}: {plan.lines:,} unique lines written at {plan.rate:,.0f} lines/s; "
            f"{report['rotations']} rotations by rename, {report['rotations_while_down']} of them while the agent was down (in every third kill window); "
            f"{plan.kills} SIGKILLs at random moments, each followed by a restart; the S3 endpoint (moto server, "
            f"boto3 over HTTP) down for {plan.outage:g} s; then `--drain`.",
            "",
            f"Result: **{verdict}**: {report['shipped']:,} lines in the store for {report['written']:,} written, "
            f"{len(report['missing'])} missing, {len(report['duplicated'])} duplicated; {report['elapsed']:.0f} s in all.",
            end,
        ]
    )
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in old and end in old:
        new = old[: old.index(begin)] + text + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    path.write_text(new)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--rate", type=float, default=12_000.0, help="lines per second written")
    p.add_argument("--rotate-every", type=int, default=120_000)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--outage", type=float, default=30.0, help="seconds the S3 endpoint is down")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", type=Path, default=None, help="work directory (default: a temporary one)")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    a = p.parse_args()
    plan = Plan(
        lines=a.lines, rate=a.rate, rotate_every=a.rotate_every, kills=a.kills, outage=a.outage, seed=a.seed
    )
    work = a.work or Path(tempfile.mkdtemp(prefix="agent-soak-"))
    report = soak(plan, work)
    print(json.dumps(report, indent=2))
    if not a.no_write:
        write_results(report, plan)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
