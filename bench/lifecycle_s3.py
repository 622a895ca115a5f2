"""Lifecycle runs over many objects on the embedded store (wall time, peak memory of the
`tailrace lifecycle run` process), and the S3 API's GET/PUT throughput against a plain file copy.

    PYTHONPATH=src .venv/bin/python bench/lifecycle_s3.py [--objects 1000000] [--skip-s3 | --skip-lifecycle]
        [--s3-processes 2] [--clients 8] [--small 1200] [--put-threads 10]
"""

from __future__ import annotations

import argparse
import hashlib
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


def _lean_puts(url: str, kid: str, secret: str, worker: int, n: int) -> float:
    """n sequential 512-byte PUTs from a lean SigV4 client (tailrace's own HTTP/1.1 connection
    and signer, ~0.2 ms of CPU a request against boto3's ~1.2 ms): a load generator that leaves
    the shared cores to the server, as a client on another host would."""
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from tailrace.api.sigv4 import sign
    from tailrace.httpwire import Connection

    parts = urlsplit(url)
    conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    body = b"x" * 512
    sha = hashlib.sha256(body).hexdigest()

    def put(path: str) -> None:
        headers = sign(method="PUT", host=conn.host_header, raw_path=path, raw_query="",
                       headers={"x-amz-content-sha256": sha}, body=body, access_key_id=kid,
                       secret=secret, region="us-east-1", service="s3", now=datetime.now(UTC))  # fmt: skip
        headers.pop("Host")
        answer = conn.request("PUT", path, list(headers.items()), body)
        if answer.status != 200:
            raise RuntimeError(f"PUT {path}: {answer.status} {answer.body[:300]!r}")

    put(f"/bench/lean/{worker}/warm")
    began = time.perf_counter()
    for i in range(n):
        put(f"/bench/lean/{worker}/{i}")
    return time.perf_counter() - began


def _small_puts(args: tuple[str, str, str, int, int, str]) -> float:
    """One client process: n sequential 512-byte PUTs; returns its seconds."""
    url, kid, secret, worker, n, kind = args
    if kind == "lean":
        return _lean_puts(url, kid, secret, worker, n)
    c = _client(url, kid, secret)
    c.head_bucket(Bucket="bench")  # connection and client set up before the clock starts
    began = time.perf_counter()
    for i in range(n):
        c.put_object(Bucket="bench", Key=f"small/{worker}/{i}", Body=b"x" * 512)
    return time.perf_counter() - began


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and of its children that are alive (the extra server
    processes of `--processes N`), from /proc: robust when other work shares the cores."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _copy_speed(root: Path, src: Path, size: int, count: int) -> float:
    """MiB/s of copying the file `count` times, each copy fsync'ed (what a durable PUT must do)."""
    began = time.perf_counter()
    for i in range(count):
        shutil.copyfile(src, root / f"copy-{i}.bin")
        fd = os.open(root / f"copy-{i}.bin", os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    took = time.perf_counter() - began
    for i in range(count):
        (root / f"copy-{i}.bin").unlink()
    return size * count / took / 2**20


def s3_throughput(
    processes: int,
    clients: int,
    small: int,
    put_threads: int = 1,
    small_clients: tuple[str, ...] = ("boto3",),
) -> list[str]:
    """Against `tailrace s3 serve --processes N` in its own process(es) (as deployed), boto3
    clients in others. Server CPU per request (all its processes, from /proc) is reported beside
    the rates: the clients run on the same cores and compete with the server."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "home"
        port = _free_port()
        env = {**os.environ, "TAILRACE_HOME": str(home)}
        env.pop("TAILRACE_DATABASE_URL", None)
        env.pop("TAILRACE_S3_ENDPOINT_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "tailrace", "s3", "serve", "--port", str(port),
                                   "--processes", str(processes)], env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
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
                fs = _copy_speed(root, src, size, count)
                cpu0, began = _cpu_seconds(server.pid), time.perf_counter()
                # `put_threads` PUTs at a time, as `aws s3 cp` of many files sends them (10 by
                # default); the copy baseline above stays one sequential copy + fsync at a time.
                with ThreadPoolExecutor(put_threads) as pool:
                    keys = [f"o/{size}-{i}" for i in range(count)]
                    list(pool.map(lambda k, body=data: c.put_object(Bucket="bench", Key=k, Body=body), keys))
                put = size * count / (time.perf_counter() - began) / 2**20
                cpu1, began = _cpu_seconds(server.pid), time.perf_counter()
                for i in range(count):
                    c.get_object(Bucket="bench", Key=f"o/{size}-{i}")["Body"].read()
                get = size * count / (time.perf_counter() - began) / 2**20
                cpu2 = _cpu_seconds(server.pid)
                rows.append(
                    f"| {size >> 20} MiB x {count}, PUT from {put_threads} thread(s) | {fs:.0f} MiB/s | {put:.0f} MiB/s ({put / fs:.0%}) "
                    f"| {get:.0f} MiB/s ({get / fs:.0%}) "
                    f"| PUT {1e3 * (cpu1 - cpu0) / count:.1f} ms, GET {1e3 * (cpu2 - cpu1) / count:.1f} ms |"
                )
            for n, kind in [(n, kind) for kind in small_clients for n in sorted({1, clients})]:
                per = max(1, small // n)
                jobs = [(url, kid, secret, w, per, kind) for w in range(n)]
                cpu0, began = _cpu_seconds(server.pid), time.perf_counter()
                with ProcessPoolExecutor(n) as pool:
                    list(pool.map(_small_puts, jobs))
                rate = n * per / (time.perf_counter() - began)
                cpu = 1e3 * (_cpu_seconds(server.pid) - cpu0) / (n * per)
                rows.append(
                    f"| 512 B x {n * per} ({n} {kind} client process(es), sequential each) | | {rate:.0f} PUT/s | "
                    f"| PUT {cpu:.2f} ms (one core: {1e3 / cpu:.0f} PUT/s per server process) |"
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
    ap.add_argument("--skip-lifecycle", action="store_true", help="only the S3 API")
    ap.add_argument("--s3-processes", type=int, default=2, help="`tailrace s3 serve --processes N`")
    ap.add_argument("--clients", type=int, default=8, help="client processes of the small-PUT run")
    ap.add_argument("--small", type=int, default=1200, help="small PUTs in all, per run")
    ap.add_argument(
        "--put-threads", type=int, default=1, help="concurrent 1 MiB / 64 MiB PUTs (aws s3 cp: 10)"
    )
    ap.add_argument(
        "--small-clients", default="boto3,lean",
        help="clients of the small-PUT runs: boto3 and/or lean (tailrace's own signer and HTTP/1.1 connection)",
    )  # fmt: skip
    args = ap.parse_args()
    stamp = f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    if not args.skip_lifecycle:
        lc = lifecycle(args.objects, args.archive)
        body = "\n".join(
            [
                f"Lifecycle runs (bench/lifecycle_s3.py), {stamp}, SQLite metadata, embedded store on the local "
                "disk. Peak memory is the `tailrace lifecycle run` process's RSS.",
                "",
                "| lifecycle run | objects | wall | peak RSS | read by the run (/proc/self/io) |",
                "|---|---|---|---|---|",
                *lc,
            ]
        )
        print(body)
        if not args.no_write:
            write_section("lifecycle_runs", body)
    if not args.skip_s3:
        kinds = tuple(k for k in args.small_clients.split(",") if k)
        tp = s3_throughput(args.s3_processes, args.clients, args.small, args.put_threads, kinds)
        body = "\n".join(
            [
                f"S3 API (bench/lifecycle_s3.py --skip-lifecycle), {stamp}: `tailrace s3 serve --processes "
                f"{args.s3_processes}`, clients in other processes on the same host (boto3; for small PUTs also "
                "a lean SigV4 client). Server CPU is "
                "user+system of all server processes per request (/proc).",
                "",
                "| S3 API | file copy + fsync | PUT (share of copy) | GET (share) | server CPU per request |",
                "|---|---|---|---|---|",
                *tp,
            ]
        )
        print(body)
        if not args.no_write:
            write_section("s3_api", body)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
