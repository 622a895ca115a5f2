"""Lifecycle runs over many objects on the embedded store (wall time, peak memory of the
`tailrace lifecycle run` process), and the S3 API's GET/PUT throughput against a plain file copy.

    .venv/bin/python bench/lifecycle_s3.py [--objects 100000] [--archive 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def _seed(root: Path, n: int, age_days: int) -> None:
    ts = time.time() - age_days * 86400
    body = b"GET / 200\n" * 20
    for i in range(n):
        d = root / "weblogs" / "logs" / f"2026{(i // 2400) % 12 + 1:02d}{(i // 100) % 28 + 1:02d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"host-{i % 24:02d}_{i}.gz"
        p.write_bytes(body)
        os.utime(p, (ts, ts))


def _tailrace(home: Path, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the child, stdout) of one `tailrace` subprocess."""
    env = {**os.environ, "TAILRACE_HOME": str(home)}
    env.pop("TAILRACE_DATABASE_URL", None)
    env.pop("TAILRACE_S3_ENDPOINT_URL", None)
    began = time.perf_counter()
    # A fresh process per measurement: ru_maxrss of RUSAGE_CHILDREN is the largest child so far,
    # so run each through a wrapper that reports its own peak.
    code = (
        "import resource,sys,runpy;sys.argv=['tailrace',*sys.argv[1:]];"
        'exec(\'try:\\n runpy.run_module("tailrace",run_name="__main__")\\nexcept SystemExit: pass\');'
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - began
    if out.returncode:
        raise SystemExit(out.stderr)
    peak = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK"))
    return took, peak / 1024, out.stdout


def lifecycle(objects: int, archive: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _tailrace(home, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "weblogs",
                  "--lifecycle-configuration", json.dumps(RULES),
                  "--transition-default-minimum-object-size", "varies_by_storage_class")  # fmt: skip
        _seed(home / "s3", objects, age_days=3)
        t, mem, _ = _tailrace(home, "lifecycle", "run")
        rows.append(f"| run, nothing due | {objects:,} | {t:.1f} s | {mem:.0f} MiB |")
        t, mem, _ = _tailrace(home, "lifecycle", "run", "--dry-run", "--now", "2099-01-01T00:00:00Z")
        rows.append(f"| dry run, every object due (expire) | {objects:,} | {t:.1f} s | {mem:.0f} MiB |")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _tailrace(home, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "weblogs",
                  "--lifecycle-configuration", json.dumps(RULES),
                  "--transition-default-minimum-object-size", "varies_by_storage_class")  # fmt: skip
        _seed(home / "s3", archive, age_days=30)
        t, mem, out = _tailrace(home, "lifecycle", "run")
        assert "transition:GLACIER" in out, out
        rows.append(
            f"| run, every object archived (compress + fsync + switch) | {archive:,} | {t:.1f} s | {mem:.0f} MiB |"
        )
    return rows


def s3_throughput() -> list[str]:
    import boto3
    from botocore.config import Config

    from tailrace.api.keys import KeyStore
    from tailrace.api.s3.app import S3Api
    from tailrace.api.s3.buckets import Buckets
    from tailrace.api.server import ApiServer
    from tailrace.clock import SystemClock
    from tailrace.lifecycle.configs import LifecycleConfigs
    from tailrace.state import open_store
    from tailrace.storage.tiered import TieredLocalStore

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = open_store(f"sqlite:///{root}/state.db")
        keys = KeyStore(state, SystemClock())
        key = keys.create("bench")
        app = S3Api(
            store=TieredLocalStore(root / "s3"),
            buckets=Buckets(state.engine),
            lifecycle=LifecycleConfigs(state.engine),
            secret_for=keys.secret_for,
            owner_for=lambda k: found.owner if (found := keys.lookup(k)) else None,
        )
        with ApiServer(app) as srv:
            c = boto3.client("s3", endpoint_url=srv.url, region_name="us-east-1",
                             aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key,
                             config=Config(s3={"addressing_style": "path"}))  # fmt: skip
            c.create_bucket(Bucket="bench")
            for size, count in ((1 << 20, 40), (64 << 20, 3)):
                data = os.urandom(size)
                src = root / "src.bin"
                src.write_bytes(data)
                began = time.perf_counter()
                for i in range(count):
                    shutil.copyfile(src, root / f"copy-{i}.bin")
                    os.fsync(os.open(root / f"copy-{i}.bin", os.O_RDONLY))
                fs = size * count / (time.perf_counter() - began) / 2**20
                began = time.perf_counter()
                for i in range(count):
                    c.put_object(Bucket="bench", Key=f"o/{size}-{i}", Body=data)
                put = size * count / (time.perf_counter() - began) / 2**20
                began = time.perf_counter()
                for i in range(count):
                    c.get_object(Bucket="bench", Key=f"o/{size}-{i}")["Body"].read()
                get = size * count / (time.perf_counter() - began) / 2**20
                rows.append(
                    f"| {size >> 20} MiB x {count} | {fs:.0f} MiB/s | {put:.0f} MiB/s | {get:.0f} MiB/s |"
                )
            began = time.perf_counter()
            n = 500
            for i in range(n):
                c.put_object(Bucket="bench", Key=f"small/{i}", Body=b"x" * 512)
            rate = n / (time.perf_counter() - began)
            rows.append(f"| 512 B x {n} (one client, sequential) | | {rate:.0f} PUT/s | |")
        state.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--archive", type=int, default=5_000)
    args = ap.parse_args()
    lc = lifecycle(args.objects, args.archive)
    tp = s3_throughput()
    body = "\n".join(
        [
            "## Lifecycle runs and the S3 endpoint (bench/lifecycle_s3.py)",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, shared 2-core VM, SQLite metadata, "
            "embedded store on the local disk. Peak memory is the `tailrace lifecycle run` process's RSS.",
            "",
            "| lifecycle run | objects | wall | peak RSS |",
            "|---|---|---|---|",
            *lc,
            "",
            "| S3 API, boto3 on the same host | file copy + fsync | PUT | GET |",
            "|---|---|---|---|",
            *tp,
        ]
    )
    print(body)
    write_section("lifecycle_s3", body)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
