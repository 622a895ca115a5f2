"""The Query route (SNS/CloudWatch, form-encoded POST /) under 120 unauthenticated 24 MiB POSTs at
once: the peak resident memory of a fresh `tailrace up` (SQLite, embedded defaults). Half the
POSTs declare their length, half are chunked (no length to refuse them by). Figures go to
bench/RESULTS.md between the notify-query-flood markers.

    PYTHONPATH=src .venv/bin/python bench/query_flood.py [--no-write]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import _rss_kib, _tree, start_up, write_section

BEGIN = "<!-- notify-query-flood:begin -->"
END = "<!-- notify-query-flood:end -->"


def flood(url: str, server_pid: int, posts: int = 120, size: int = 24 << 20) -> dict[str, Any]:
    parts = urlsplit(url)
    pids = _tree(server_pid)
    before = sum(_rss_kib(p) for p in pids)
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], sum(_rss_kib(p) for p in pids))
            except OSError:
                pass
            time.sleep(0.02)

    statuses: list[str] = []
    sent: list[int] = []
    piece = b"x" * (1 << 20)

    def post(chunked: bool) -> None:
        n = 0
        status = "no answer"
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=60) as s:
                s.sendall(
                    (
                        f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\n{framing}\r\n"
                        "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\r\n"
                    ).encode()
                    + (f"{size:x}\r\n".encode() if chunked else b"")
                )
                try:
                    while n < size:
                        n += s.send(piece[: min(len(piece), size - n)])
                except OSError:
                    pass  # the server answered and closed without reading the rest
                s.settimeout(30)
                try:
                    status = s.recv(64).split(b" ")[1].decode()
                except (OSError, IndexError):
                    pass
        except OSError as exc:
            status = type(exc).__name__
        statuses.append(status)
        sent.append(n)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.perf_counter()
    ts = [threading.Thread(target=post, args=(i % 2 == 0,)) for i in range(posts)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.perf_counter() - began
    time.sleep(0.5)
    stop.set()
    sampler.join()
    return {
        "before_mib": before / 1024,
        "peak_mib": peak[0] / 1024,
        "statuses": {k: statuses.count(k) for k in sorted(set(statuses))},
        "sent_mib": sum(sent) / (1 << 20),
        "seconds": took,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tailrace-query-flood-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        proc, endpoint, _ = start_up(home)
        try:
            time.sleep(1.0)
            r = flood(endpoint, proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    print(r)
    body = f"""## notify: unauthenticated flood of the Query route (`bench/query_flood.py`)

Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared with other work, CPython
{sys.version.split()[0]}, a fresh `tailrace up` on SQLite. 120 unauthenticated form-encoded POSTs to `/`
(the SNS/CloudWatch Query route), each trying to send 24 MiB, all at once; half declare their
Content-Length, half are chunked.

| measure | figure |
|---|---|
| server resident memory before | {r["before_mib"]:.0f} MiB |
| peak during the flood (goal < 200 MiB) | **{r["peak_mib"]:.0f} MiB** |
| answers | {r["statuses"]} |
| bytes that left the clients | {r["sent_mib"]:.0f} MiB in {r["seconds"]:.1f} s |

The route checks the signature's headers before it reads the body, so each POST is answered 403
after its head; before this change a chunked POST was read up to the route's 1 MiB cap first.
"""
    if not args.no_write:
        write_section(body, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
