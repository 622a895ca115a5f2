"""Benchmark of `tailrace agent`: tail + apache2 parse + gzip ship of a large combined log.

    .venv/bin/python bench/agent.py                 # 2 GiB, embedded store; updates bench/RESULTS.md
    .venv/bin/python bench/agent.py --size 256m --no-write

The log is generated once (days of tailrace.sample.accesslog traffic) and cached. The agent runs
as `tailrace agent -c F --drain` in a child process, so its CPU time and peak memory come from
wait4's rusage. The shipped objects are then decompressed and their lines counted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
MiB = 1 << 20
START = datetime(2024, 1, 15, tzinfo=UTC)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)", text.lower())
    if not m:
        raise SystemExit(f"bad size {text!r}")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def generate(path: Path, size: int) -> None:
    """A combined log of `size` bytes: one generated day of traffic, repeated with the date moved on."""
    from tailrace.sample.accesslog import combined_line, hits

    print(f"generating {size / MiB:.0f} MiB of access log in {path} ...", flush=True)
    day = "".join(
        combined_line(h) + "\n" for h in hits(START, START + timedelta(days=1), per_hour=40_000, seed=9)
    )
    day_bytes = day.encode()
    stamp = START.strftime("%d/%b/%Y").encode()
    tmp = path.with_suffix(".tmp")
    written = 0
    with tmp.open("wb") as out:
        k = 0
        while written < size:
            block = day_bytes.replace(stamp, (START + timedelta(days=k)).strftime("%d/%b/%Y").encode())
            if written + len(block) > size:
                block = block[: block.rfind(b"\n", 0, size - written) + 1]
                if not block:
                    break
            out.write(block)
            written += len(block)
            k += 1
    tmp.rename(path)


CONFIG = """
[system]
state_dir = "{work}/state"

[[source]]
path = "{log}"
pos_file = "{work}/state/access.pos"
format = "apache2"
tag = "apache.access"
read_from_head = true

[[match]]
pattern = "apache.*"
path = "s3://bench-log/logs/"
time_slice_format = "%Y%m%d/${{hostname}}-%H"
flush_interval = "5s"
store_as = "gzip"
"""


def run_agent(log: Path, work: Path) -> dict[str, float]:
    cfg = work / "agent.toml"
    cfg.write_text(CONFIG.format(work=work, log=log))
    env = {**os.environ, "TAILRACE_HOME": str(work / "home"), "PYTHONPATH": str(REPO / "src")}
    env.pop("TAILRACE_S3_ENDPOINT_URL", None)
    args = [sys.executable, "-m", "tailrace", "agent", "-c", str(cfg), "--drain", "-q", "--hostname", "bench"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=work)
    # VmHWM is the child's own high-water mark (ru_maxrss would include this process's image
    # from before exec); it only grows, so the last reading before exit is the peak.
    hwm = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the agent failed with exit code {proc.returncode}")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime, "maxrss_mib": hwm / 1024}


def count_shipped(root: Path) -> tuple[int, int, int]:
    from isal import igzip

    lines = objects = compressed = 0
    for p in sorted(root.rglob("*.gz")):
        objects += 1
        compressed += p.stat().st_size
        with igzip.open(p, "rb") as fh:
            while chunk := fh.read(16 * MiB):
                lines += chunk.count(b"\n")
    return lines, objects, compressed


def parse_only(log: Path, mib: int = 256) -> dict[str, float]:
    """apache2 parse + out_file format of in-memory 2 MiB batches (no files, no gzip)."""
    import polars as pl

    from tailrace.agent.config import MatchConfig, ParseConfig
    from tailrace.agent.core import split_lines
    from tailrace.agent.output import Formatter
    from tailrace.agent.parsers import make_parser

    data = log.open("rb").read(mib * MiB)
    blocks = []
    pos = 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + 2 * MiB) + 1
        if end <= pos:
            break
        blocks.append(data[pos:end])
        pos = end
    parser = make_parser(ParseConfig(type="apache2"))
    fmt = Formatter(MatchConfig(id="b", pattern="**", buffer_path=Path("/nonexistent"), timekey=3600))
    now = datetime.now(UTC)
    lines = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for block in blocks:
        split = split_lines(block, 1 << 30)
        parsed = parser.parse(split.good, now)
        fmt.parts(parsed, "apache.access")
        lines += len(split.good)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = sum(len(b) for b in blocks)
    del pl
    return {"mib": size / MiB, "wall": wall, "cpu": cpu, "lines": lines}


def write_results(text: str) -> None:
    path = REPO / "bench" / "RESULTS.md"
    begin, end = "<!-- agent:begin -->", "<!-- agent:end -->"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + section + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + section + "\n"
    path.write_text(new)


def main() -> int:
    p = argparse.ArgumentParser(description="tail + apache2 parse + gzip ship benchmark of `tailrace agent`")
    p.add_argument("--size", default="2g", help="log size (default 2g)")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tailrace-bench")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    p.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    size = parse_size(a.size)
    a.cache.mkdir(parents=True, exist_ok=True)
    log = a.cache / f"access-{a.size}.log"
    if a.generate_only:
        generate(log, size)
        return 0
    if not (log.exists() and log.stat().st_size >= size - 4096):
        # In a child process: this one stays small, so nothing of it shows in the agent's figures.
        subprocess.run(
            [sys.executable, __file__, "--generate-only", "--size", a.size, "--cache", str(a.cache)],
            check=True,
        )
    n_lines = 0
    with log.open("rb") as fh:
        while block := fh.read(64 * MiB):
            n_lines += block.count(b"\n")
    nbytes = log.stat().st_size
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="agent-bench-", dir=a.cache))
    try:
        print(f"agent: {nbytes / MiB:.0f} MiB, {n_lines} lines ...", flush=True)
        r = run_agent(log, work)
        shipped, objects, compressed = count_shipped(work / "home" / "s3" / "bench-log")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if shipped != n_lines:
        raise SystemExit(f"shipped {shipped} lines for {n_lines} in the log")
    cpu = r["user"] + r["sys"]
    gib = nbytes / (1 << 30)
    po = parse_only(log)
    rows = [
        ("input", f"{nbytes / MiB:,.0f} MiB, {n_lines:,} combined lines ({nbytes / n_lines:.0f} B/line)"),
        (
            "end to end (tail, apache2, out_file, gzip, ship)",
            f"**{nbytes / MiB / r['wall']:.1f} MiB/s**, {n_lines / r['wall']:,.0f} lines/s, wall {r['wall']:.1f} s",
        ),
        (
            "CPU",
            f"{cpu:.1f} s ({r['user']:.1f} user + {r['sys']:.1f} sys) = **{cpu / gib:.1f} CPU s per GiB**",
        ),
        ("peak memory (max RSS)", f"**{r['maxrss_mib']:.0f} MiB**"),
        ("shipped", f"{objects} gzip objects, {compressed / MiB:.0f} MiB, {shipped:,} lines (all of them)"),
        (
            "parse only (apache2 regex + out_file lines, in memory)",
            f"{po['mib'] / po['wall']:.1f} MiB/s wall, {po['mib'] / po['cpu']:.1f} MiB/s per CPU, {po['lines'] / po['wall']:,.0f} lines/s",
        ),
    ]
    import platform

    text = "\n".join(
        [
            "## tailrace agent (bench/agent.py)",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} vCPU, Python {platform.python_version()}), "
            "embedded object store (local directory), default agent settings (2 MiB read batches, isal gzip level 1), "
            "`tailrace agent -c F --drain` as a child process; CPU from wait4, peak memory from the child's VmHWM. "
            f"Load average when it started: {load_before:.1f} (the machine is shared; wall figures are ±30 %).",
            "",
            "| measure | result |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in rows],
            "",
            "Published figures on 2 vCPU (vector-test-harness, 2019): tailing files fluentd 26.1 MiB/s, Fluent Bit 35, "
            "Vector 76.7; regex parsing of Apache logs fluentd 2.6 MiB/s, Vector 13.2, Fluent Bit 20.5. "
            "Target: 25 MiB/s end to end with peak memory under 200 MiB.",
        ]
    )
    print(text)
    if not a.no_write:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
