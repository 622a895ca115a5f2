"""`tailrace up` start-up: time from launching the command to its HTTP endpoint answering, on
a fresh data directory (the SQLite file is created and migrated on the way). Target: under 2 s.

    .venv/bin/python bench/service_up.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from scheduler_common import machine, median, write_section


def once() -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="tailrace-up-") as tmp:
        env = {**os.environ, "TAILRACE_HOME": str(Path(tmp) / "home"), "PYTHONUNBUFFERED": "1"}
        env.pop("TAILRACE_DATABASE_URL", None)
        began = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tailrace", "up", "--s3-port", "off", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = None
            assert proc.stdout is not None
            for line in proc.stdout:
                if "listening on " in line:
                    url = line.split("listening on ")[1].split()[0]
                    break
            if url is None:
                raise SystemExit("tailrace up did not say where it listens")
            printed = time.monotonic() - began
            while True:
                try:
                    urllib.request.urlopen(url + "/", timeout=5)
                    break
                except urllib.error.HTTPError:
                    break  # it answered
                except OSError:
                    time.sleep(0.01)
            answered = time.monotonic() - began
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
        return printed, answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = [once() for _ in range(args.runs)]
    printed = median([r[0] for r in results])
    answered = median([r[1] for r in results])
    body = "\n".join(
        [
            "## service: `tailrace up` start-up (bench/service_up.py)",
            "",
            f"{machine()}. From launching `tailrace up --port 0` on a fresh data directory to the line saying where it",
            f"listens, and to its first HTTP answer; median of {args.runs}. Target: ready in under 2 s.",
            "",
            "| says where it listens | answers HTTP |",
            "|---|---|",
            f"| {printed:.2f} s | {answered:.2f} s |",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("up", body)


if __name__ == "__main__":
    main()
