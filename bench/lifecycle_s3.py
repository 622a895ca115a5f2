"""Lifecycle runs over many objects on the embedded store (wall time, peak memory of the
`tailrace lifecycle run` process), and the S3 API's GET/PUT throughput against a plain file copy.

    PYTHONPATH=src .venv/bin/python bench/lifecycle_s3.py [--objects 1000000] [--only lifecycle|s3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler_common import write_section

RULES = {
    "Rules": [
        {
            "ID": "raw-logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 365},
        }
    ]
}


NOW = datetime(2026, 12, 31, tzinfo=UTC)


def _seed(root: Path, n: int, days: int = 365) -> int:
    """n objects spread over the `days` daily folders before NOW (logs/YYYYMMDD/host-HH_N.gz,
    written that day at 10:00 UTC); returns the total bytes. Written on threads (file creation
    waits on I/O)."""
    body = b"GET / 200\n" * 20
    per_day = -(-n // days)

    def day(d: int) -> None:
        when = NOW - timedelta(days=days - d) + timedelta(hours=10)
        folder = root / "weblogs" / "logs" / when.strftime("%Y%m%d")
        folder.mkdir(parents=True, exist_ok=True)
        ts = when.timestamp()
        for i in range(d * per_day, min(n, (d + 1) * per_day)):
            p = folder / f"host-{i % 24:02d}_{i}.gz"
            p.write_bytes(body)
            os.utime(p, (ts, ts))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(day, range(days)))
    return n * len(body)


def _tailrace(home: Path, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the child, stdout) of one `tailrace` subprocess; its /proc I/O
    counters go to LAST_IO."""
    env = {**os.environ, "TAILRACE_HOME": str(home)}
    env.pop("TAILRACE_DATABASE_URL", None)
    env.pop("TAILRACE_S3_ENDPOINT_URL", None)
    began = time.perf_counter()
    # A fresh process per measurement: ru_maxrss of RUSAGE_CHILDREN is the largest child so far,
    # so run each through a wrapper that reports its own peak.
    code = (
        "import resource,sys,runpy;sys.argv=['tailrace',*sys.argv[1:]];"
        'exec(\'try:\\n runpy.run_module("tailrace",run_name="__main__")\\nexcept SystemExit: pass\');'
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr);"
        "print('IO', open('/proc/self/io').read().replace(chr(10), ' '), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - began
    if out.returncode:
        raise SystemExit(out.stderr)
    peak = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK"))
    io = next(line for line in out.stderr.splitlines() if line.startswith("IO"))
    words = io.split()[1:]
    LAST_IO.clear()
    LAST_IO.update({k.rstrip(":"): int(v) for k, v in zip(words[::2], words[1::2], strict=False)})
    return took, peak / 1024, out.stdout


LAST_IO: dict[str, int] = {}
"""rchar (bytes read through read syscalls, imports included), syscr, read_bytes of the last run."""


def _read(data_bytes: int) -> str:
    return (
        f"{LAST_IO.get('rchar', 0) / 2**20:.0f} MiB read in {LAST_IO.get('syscr', 0):,} read calls "
        f"(objects hold {data_bytes / 2**20:.0f} MiB)"
    )


class Rows(list[str]):
    """Rows also printed as they come (removing a million files afterwards takes minutes)."""

    def append(self, row: str) -> None:
        print(row, file=sys.stderr, flush=True)
        super().append(row)


def lifecycle(objects: int, archive: int) -> list[str]:
    """The classic rule (GLACIER after 7 days, expire after 365). `objects` written over the last
    6 days: nothing is due, the run only reads metadata; a dry run in 2099 finds every object due.
    Then `archive` objects over a year: the catch-up run archives everything past 7 days and
    expires what is a year old, and the next day's run moves one day's objects."""
    rows = Rows()
    rules = json.dumps(RULES)
    for n, days in ((objects, 6), (archive, 365)):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            _tailrace(home, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "weblogs",
                      "--lifecycle-configuration", rules,
                      "--transition-default-minimum-object-size", "varies_by_storage_class")  # fmt: skip
            began = time.perf_counter()
            data = _seed(home / "s3", n, days)
            print(f"seeded {n:,} objects in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
            if days < 7:
                t, mem, out = _tailrace(home, "lifecycle", "run", "--now", NOW.isoformat())
                assert "nothing due" in out, out
                rows.append(f"| run, nothing due | {n:,} | {t:.1f} s | {mem:.0f} MiB | {_read(data)} |")
                t, mem, _ = _tailrace(home, "lifecycle", "run", "--dry-run", "--now", "2099-01-01T00:00:00Z")
                rows.append(
                    f"| dry run, every object due (expire) | {n:,} | {t:.1f} s | {mem:.0f} MiB | {_read(data)} |"
                )
                continue
            for label, when in (("catch-up run", NOW), ("next day's run", NOW + timedelta(days=1))):
                t, mem, out = _tailrace(home, "lifecycle", "run", "--now", when.isoformat())
                did = "; ".join(line.split("  ", 3)[-1] for line in out.splitlines()[1:] if "rule" in line)
                rows.append(f"| {label}: {did} | {n:,} | {t:.1f} s | {mem:.0f} MiB | {_read(data)} |")
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(url: str, kid: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=kid,
                        aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"},
                        max_pool_connections=32))  # fmt: skip


def _small_puts(args: tuple[str, str, str, int, int]) -> float:
    """One client process: n sequential 512-byte PUTs; returns its seconds."""
    url, kid, secret, worker, n = args
    c = _client(url, kid, secret)
    c.head_bucket(Bucket="bench")  # connection and client set up before the clock starts
    began = time.perf_counter()
    for i in range(n):
        c.put_object(Bucket="bench", Key=f"small/{worker}/{i}", Body=b"x" * 512)
    return time.perf_counter() - began


def s3_throughput() -> list[str]:
    """Against `tailrace s3 serve` in its own process (as deployed), boto3 clients in others."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        port = _free_port()
        env = {**os.environ, "TAILRACE_HOME": str(home)}
        env.pop("TAILRACE_DATABASE_URL", None)
        env.pop("TAILRACE_S3_ENDPOINT_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "tailrace", "s3", "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert server.stdout is not None and "serving S3" in server.stdout.readline()
            made = subprocess.run([sys.executable, "-m", "tailrace", "keys", "create", "--owner", "bench",
                                   "--output", "json"], env=env, capture_output=True, text=True, check=True)  # fmt: skip
            key = json.loads(made.stdout)
            kid, secret = key["AccessKeyId"], key["SecretAccessKey"]
            url = f"http://127.0.0.1:{port}"
            c = _client(url, kid, secret)
            c.create_bucket(Bucket="bench")
            for size, count in ((1 << 20, 40), (64 << 20, 3)):
                data = os.urandom(size)
                src = root / "src.bin"
                src.write_bytes(data)
                began = time.perf_counter()
                for i in range(count):
                    shutil.copyfile(src, root / f"copy-{i}.bin")
                    fd = os.open(root / f"copy-{i}.bin", os.O_RDONLY)
                    os.fsync(fd)
                    os.close(fd)
                fs = size * count / (time.perf_counter() - began) / 2**20
                for i in range(count):
                    (root / f"copy-{i}.bin").unlink()
                began = time.perf_counter()
                for i in range(count):
                    c.put_object(Bucket="bench", Key=f"o/{size}-{i}", Body=data)
                put = size * count / (time.perf_counter() - began) / 2**20
                began = time.perf_counter()
                for i in range(count):
                    c.get_object(Bucket="bench", Key=f"o/{size}-{i}")["Body"].read()
                get = size * count / (time.perf_counter() - began) / 2**20
                rows.append(
                    f"| {size >> 20} MiB x {count} | {fs:.0f} MiB/s | {put:.0f} MiB/s ({put / fs:.0%}) "
                    f"| {get:.0f} MiB/s ({get / fs:.0%}) |"
                )
            for clients, per in ((1, 300), (8, 150)):
                jobs = [(url, kid, secret, w, per) for w in range(clients)]
                began = time.perf_counter()
                with ProcessPoolExecutor(clients) as pool:
                    list(pool.map(_small_puts, jobs))
                rate = clients * per / (time.perf_counter() - began)
                rows.append(
                    f"| 512 B x {clients * per} ({clients} client process(es), sequential each) | | {rate:.0f} PUT/s | |"
                )
        finally:
            server.terminate()
            server.wait(30)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--archive", type=int, default=20_000)
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    ap.add_argument("--skip-s3", action="store_true", help="only the lifecycle runs")
    args = ap.parse_args()
    lc = lifecycle(args.objects, args.archive)
    tp = [] if args.skip_s3 else s3_throughput()
    body = "\n".join(
        [
            "## Lifecycle runs and the S3 endpoint (bench/lifecycle_s3.py)",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, shared 2-core VM, SQLite metadata, "
            "embedded store on the local disk. Peak memory is the `tailrace lifecycle run` process's RSS.",
            "",
            "| lifecycle run | objects | wall | peak RSS | read by the run (/proc/self/io) |",
            "|---|---|---|---|---|",
            *lc,
            "",
            "| S3 API (`tailrace s3 serve`), boto3 on the same host | file copy + fsync | PUT (share of copy) | GET |",
            "|---|---|---|---|",
            *tp,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("lifecycle_s3", body)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
