"""Benchmark: the seed script on DuckDB in bounded memory, and before/after throughput.

    .venv/bin/python bench/duckdb_bounded.py --lines 20000000 --limit 1GiB     # bounded run
    .venv/bin/python bench/duckdb_bounded.py --ab-lines 2000000 --reps 3       # + before/after
    .venv/bin/python bench/duckdb_bounded.py --before-commit ceb6d11 ...       # the code before

Generates fluentd out_s3 lines with bench/hive_logs.py's generator, then runs
`tailrace hive -S -f whatislog.q -d DATE=20121221` as child processes (peak RSS and CPU from
wait4):

- bounded: the current code with `[duckdb] memory_limit` = --limit, against the same code with
  memory_limit = 80% of RAM (DuckDB's own default, "unlimited"); outputs compared byte for byte.
- A/B (with --ab-lines): the code of --before-commit (extracted with `git archive`) and the
  current code, both byte-compiled first, alternating, on the same input; outputs compared byte
  for byte.

Figures go to bench/RESULTS.md between the duckdb_bounded markers (or stdout with --no-write).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from hive_logs import generate, machine  # noqa: E402

DATE = "20121221"
SCRIPT = REPO / "src" / "tailrace" / "sample" / "whatislog.q"


def run_child(src: Path, home: Path, extra_env: dict[str, str]) -> tuple[float, float, float, bytes]:
    """Wall s, CPU s, peak RSS MiB of one `tailrace hive` child, and a digest of its outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env.update({"TAILRACE_HOME": str(home), "PYTHONPATH": str(src), **extra_env})
    argv = [sys.executable, "-m", "tailrace", "hive", "-S", "-f", str(SCRIPT), "-d", f"DATE={DATE}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tailrace hive ({src}) failed:\n{err}")
    base = home / "s3" / "memorycraft-log-archive"
    digest = hashlib.sha256()  # outputs of 20 M lines are GiBs: compared by digest, not held
    for part in (base / "archives" / DATE / "000000_0", base / "stats" / DATE / "000000_0"):
        with part.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, digest.digest()


def home_with_input(root: Path, name: str, files: list[Path]) -> Path:
    """A data directory whose input folder hard-links the generated files (same bytes, no copy)."""
    home = root / name
    logs = home / "s3" / "memorycraft-log" / "logs" / DATE
    logs.mkdir(parents=True)
    for f in files:
        os.link(f, logs / f.name)
    return home


def write_section(text: str) -> None:
    path = REPO / "bench" / "RESULTS.md"
    start, end = "<!-- duckdb_bounded:start -->", "<!-- duckdb_bounded:end -->"
    body = path.read_text()
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body and end in body:
        body = body[: body.index(start)] + block + body[body.index(end) + len(end) :]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    path.write_text(body)


def row(name: str, runs: list[tuple[float, float, float, bytes]], lines: int) -> str:
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    rss = max(r[2] for r in runs)
    each = ", ".join(f"{r[0]:.1f}" for r in runs)
    return f"| {name} | {wall:.2f} | {lines / wall / 1e6:.2f} M | {cpu:.1f} | {rss:.0f} | {each} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--lines",
        type=int,
        default=20_000_000,
        help="input lines of the bounded run (0: skip it and print, not write)",
    )
    ap.add_argument("--limit", default="1GiB", help="[duckdb] memory_limit of the bounded run")
    ap.add_argument("--ab-lines", type=int, default=0, help="input lines of the before/after run (0: skip)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each side of the before/after run")
    ap.add_argument("--before-commit", default="ceb6d11", help="the code before the change")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument(
        "--no-write", action="store_true", help="print the section instead of updating RESULTS.md"
    )
    args = ap.parse_args()
    now = REPO / "src"
    parts: list[str] = [
        "## DuckDB bounded memory (`bench/duckdb_bounded.py`)\n",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on: {machine()}.\n",
    ]
    with tempfile.TemporaryDirectory(prefix="duckdb-bounded-") as tmp:
        root = Path(tmp)
        if args.ab_lines:
            before = root / "before"
            before.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.before_commit, "src"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
            for src in (before / "src", now):
                # Byte-compiled first, as an installed package is: a run that may not write .pyc
                # (PYTHONDONTWRITEBYTECODE) would compile every module of its own on each start.
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
            files = generate(root / "ab-input", args.ab_lines, args.files)
            size = sum(f.stat().st_size for f in files) / 2**20
            homes = {
                "before": home_with_input(root, "ab-before", files),
                "after": home_with_input(root, "ab-after", files),
            }
            runs: dict[str, list[tuple[float, float, float, bytes]]] = {"before": [], "after": []}
            for rep in range(args.reps):
                for side, src in (("before", before / "src"), ("after", now)):
                    runs[side].append(run_child(src, homes[side], {}))
                    print(f"A/B rep {rep + 1} {side}: {runs[side][-1][0]:.1f} s", file=sys.stderr, flush=True)
            same = len({r[3] for r in runs["before"] + runs["after"]}) == 1
            wb = statistics.median(r[0] for r in runs["before"])
            wa = statistics.median(r[0] for r in runs["after"])
            cb = statistics.median(r[1] for r in runs["before"])
            ca = statistics.median(r[1] for r in runs["after"])
            parts.append(
                f"""### Throughput before/after, side by side

`tailrace hive -S -f whatislog.q` on {args.ab_lines:,} lines in {len(files)} gzip files ({size:.0f} MiB),
the code of {args.before_commit} (before) and of this branch (after, default settings) alternating,
{args.reps} repetitions each, in one run. Outputs byte-identical across every run: **{"yes" if same else "NO"}**.

| code | wall s (median) | input lines/s | CPU s (median) | peak RSS MiB | wall of each run (s) |
|---|---|---|---|---|---|
{row("before", runs["before"], args.ab_lines)}
{row("after", runs["after"], args.ab_lines)}

Throughput after/before: **{wb / wa:.2f}×** (wall), CPU seconds {cb / ca:.2f}× fewer.
"""
            )
        if not args.lines:  # only the before/after run: printed (RESULTS.md keeps the bounded run)
            finish("\n".join(parts), True)
            return
        files = generate(root / "input", args.lines, args.files)
        size = sum(f.stat().st_size for f in files) / 2**20
        limited = run_child(
            now, home_with_input(root, "limited", files), {"TAILRACE_DUCKDB__MEMORY_LIMIT": args.limit}
        )
        print(f"bounded: {limited[0]:.1f} s, {limited[2]:.0f} MiB", file=sys.stderr, flush=True)
        free = run_child(
            now, home_with_input(root, "unlimited", files), {"TAILRACE_DUCKDB__MEMORY_LIMIT": "80%"}
        )
        print(f"unlimited: {free[0]:.1f} s, {free[2]:.0f} MiB", file=sys.stderr, flush=True)
    limit_mib = {"gib": 1024, "mib": 1}[args.limit[-3:].lower()] * float(args.limit[:-3])
    parts.append(
        f"""### {args.lines:,} lines with memory_limit = {args.limit}

Input: {args.lines:,} lines in {len(files)} gzip files ({size:.0f} MiB; about {args.lines * 241 / 2**30:.1f} GiB
uncompressed). One run with `TAILRACE_DUCKDB__MEMORY_LIMIT={args.limit}`, one with `80%` (DuckDB's own
default, i.e. no limit to speak of). Outputs byte-identical: **{"yes" if limited[3] == free[3] else "NO"}**.

| run | wall s | input lines/s | CPU s | peak RSS MiB | RSS over the limit |
|---|---|---|---|---|---|
| memory_limit {args.limit} | {limited[0]:.1f} | {args.lines / limited[0] / 1e6:.2f} M | {limited[1]:.1f} | {limited[2]:.0f} | {limited[2] - limit_mib:+.0f} MiB |
| unlimited (80%) | {free[0]:.1f} | {args.lines / free[0] / 1e6:.2f} M | {free[1]:.1f} | {free[2]:.0f} | |

Throughput bounded/unlimited: **{free[0] / limited[0]:.2f}** (wall), {free[1] / limited[1]:.2f} (CPU).
"""
    )
    finish("\n".join(parts), args.no_write)


def finish(section: str, no_write: bool) -> None:
    if not no_write:
        write_section(section)
    print(section)


if __name__ == "__main__":
    main()
