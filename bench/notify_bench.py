"""Notification benchmarks: Publish -> received by 10 local HTTP subscribers (p50/p99 at a steady
publish rate), one alarm evaluation round (pure rules over 10,000 alarms, and the full round with
the database), and PutMetricData throughput. SQLite in a temporary directory; figures go to
bench/RESULTS.md between the notify markers.

    PYTHONPATH=src .venv/bin/python bench/notify_bench.py [--seconds 5] [--rate 100]
    PYTHONPATH=src .venv/bin/python bench/notify_bench.py --publish-only [--rates 100,20] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
sys.path.insert(0, os.environ.get("TAILRACE_BENCH_SRC", str(REPO / "src")))  # a baseline's, in a child

from tailrace.clock import FrozenClock, SystemClock  # noqa: E402
from tailrace.notify.alarmrules import Rule, evaluate, evaluation_range  # noqa: E402
from tailrace.notify.alarms import AlarmService  # noqa: E402
from tailrace.notify.delivery import DeliveryWorker  # noqa: E402
from tailrace.notify.httpsend import DestinationPolicy  # noqa: E402
from tailrace.notify.metrics import MetricStore  # noqa: E402
from tailrace.notify.signing import Signer  # noqa: E402
from tailrace.notify.tables import subscriptions  # noqa: E402
from tailrace.notify.topics import Scope, TopicService  # noqa: E402
from tailrace.state.engine import create_engine  # noqa: E402


def _subscriber_process(n: int, ports: Any, out: Any) -> None:
    """Runs in its own process (as real subscribers would): n servers; each receipt (message id,
    wall time) goes to `out`."""
    received: dict[str, list[float]] = {}
    lock = threading.Lock()
    servers = _subscribers(n, received, lock, clock=time.time, sink=out)
    for srv in servers:
        ports.put(srv.server_address[1])
    threading.Event().wait()


def _subscribers(
    n: int,
    received: dict[str, list[float]],
    lock: threading.Lock,
    *,
    clock: Any = time.perf_counter,
    sink: Any = None,
) -> list[ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the web servers subscribers run on

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            now = clock()
            mid = json.loads(body)["MessageId"]
            if sink is not None:
                sink.put((mid, now))
            else:
                with lock:
                    received.setdefault(mid, []).append(now)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    servers = []
    for _ in range(n):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    return servers


def bench_publish(tmp: Path, seconds: float, rate: float) -> dict[str, Any]:
    engine = create_engine(f"sqlite:///{tmp}/publish.db")
    clock = SystemClock()
    topics = TopicService(engine, clock)
    worker = DeliveryWorker(
        engine, clock, Signer(tmp / "notify"), DestinationPolicy(allow_private=lambda: True), threads=10
    )
    topics.on_commit.append(worker.wake)
    # The subscribers run in a process of their own, as real ones would: in this one they would
    # take the interpreter lock from the delivery loop and the measure would be of that contention.
    ctx = mp.get_context("spawn")
    ports: Any = ctx.Queue()
    receipts: Any = ctx.Queue()
    proc = ctx.Process(target=_subscriber_process, args=(10, ports, receipts), daemon=True)
    proc.start()
    scope = Scope(owner="bench")
    arn = topics.create_topic(scope, "bench")
    for _ in range(10):
        port = ports.get(timeout=30)
        sub = topics.subscribe(scope, arn, "http", f"http://127.0.0.1:{port}/", return_arn=True)
        with engine.begin() as conn:
            conn.execute(subscriptions.update().where(subscriptions.c.arn == sub).values(confirmed=True))
    worker.start()
    sent: dict[str, float] = {}
    count = int(seconds * rate)
    began = time.perf_counter()
    for i in range(count):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.time()
        sent[topics.publish(scope, arn, f"message {i}")] = t0
    achieved = count / (time.perf_counter() - began)
    received: dict[str, list[float]] = {}
    deadline = time.perf_counter() + 60
    got = 0
    while got < count * 10 and time.perf_counter() < deadline:
        try:
            mid, at = receipts.get(timeout=1)
        except queue.Empty:
            continue
        if mid in sent:  # not the subscriptions' confirmations
            received.setdefault(mid, []).append(at)
            got += 1
    worker.stop()
    proc.terminate()
    latencies = sorted(
        (t - sent[mid]) * 1000 for mid, times in received.items() for t in times if mid in sent
    )
    return {
        "messages": count,
        "deliveries": len(latencies),
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "rate": min(achieved, rate),
    }


def bench_rules(n: int) -> float:
    now = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    rule = Rule(
        statistic="Sum",
        period=60,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        threshold=10.0,
        comparison="GreaterThanOrEqualToThreshold",
    )
    values = list(zip(evaluation_range(rule, now), (12.0, None, 3.0), strict=True))
    t0 = time.process_time()
    for _ in range(n):
        evaluate(rule, values, "OK", now)
    return time.process_time() - t0


OWNERS = ("bench0", "bench1", "bench2", "bench3")  # an owner holds at most 5000 alarms


def bench_round(tmp: Path, n: int) -> tuple[float, float, float, float]:
    engine = create_engine(f"sqlite:///{tmp}/alarms.db")
    clock = FrozenClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    metrics = MetricStore(engine, clock)
    alarms = AlarmService(engine, clock, metrics, TopicService(engine, clock))
    for owner in OWNERS:
        metrics.put(
            owner,
            "Web",
            [
                {
                    "MetricName": f"m{i % 100}",
                    "Value": float(i),
                    "Timestamp": clock.now() - timedelta(minutes=1),
                }
                for i in range(100)
            ],
        )
    for i in range(n):
        alarms.put(
            OWNERS[i % len(OWNERS)],
            "us-east-1",
            {
                "AlarmName": f"a{i}",
                "MetricName": f"m{i % 100}",
                "Namespace": "Web",
                "Statistic": "Sum",
                "Period": 60,
                "EvaluationPeriods": 2,
                "Threshold": 50,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        )
    out = []
    for step in (1, 60):  # the first round moves every alarm out of INSUFFICIENT_DATA; the next is steady
        clock.advance(step)
        t0, c0 = time.perf_counter(), time.process_time()
        done = alarms.evaluate_due(limit=n)
        assert done == n, done
        out += [time.perf_counter() - t0, time.process_time() - c0]
    return tuple(out)  # type: ignore[return-value]


def bench_put(tmp: Path, calls: int, per_call: int) -> float:
    engine = create_engine(f"sqlite:///{tmp}/put.db")
    metrics = MetricStore(engine, SystemClock())
    data = [
        {"MetricName": "requests", "Dimensions": [{"Name": "host", "Value": f"web-{i % 20}"}], "Value": 1.0}
        for i in range(per_call)
    ]
    t0 = time.perf_counter()
    for _ in range(calls):
        metrics.put("bench", "Web", data)
    return calls * per_call / (time.perf_counter() - t0)


def _publish_run(src: Path, seconds: float, rate: float) -> dict[str, Any]:
    """bench_publish in a fresh interpreter, importing tailrace from `src` (this tree's, or a
    baseline revision's)."""
    import subprocess

    cmd = [sys.executable, str(Path(__file__)), "--publish-child", str(src), str(seconds), str(rate)]
    out = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(src), "TAILRACE_BENCH_SRC": str(src)},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _publish_child(seconds: float, rate: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        cpu = time.process_time()
        result = bench_publish(Path(d), seconds, rate)
        result["cpu_ms_per_delivery"] = (time.process_time() - cpu) * 1000 / max(result["deliveries"], 1)
    print(json.dumps(result))


def publish_section(seconds: float, rates: list[float], baseline: str | None) -> None:
    """Publish latency only, at each rate, for this tree and (with --baseline REV) for the whole
    `src` tree of another git revision (unpacked with git archive), run back to back; written to
    its own section."""
    import subprocess

    old_src = None
    if baseline:
        old_src = Path(tempfile.mkdtemp()) / "baseline"
        old_src.mkdir()
        archive = subprocess.run(
            ["git", "archive", baseline, "src"], cwd=REPO, check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive.stdout, check=True)
        old_src = old_src / "src"
    rows = []
    for rate in rates:
        for label, src in ((f"baseline {baseline}", old_src), ("this tree", REPO / "src")):
            if src is None:
                continue
            load = os.getloadavg()[0]
            r = _publish_run(src, seconds, rate)
            print(label, rate, r, f"load {load:.1f}")
            rows.append(
                f"| {label} | {rate:.0f}/s ({r['rate']:.0f} achieved) | {r['deliveries']} | {r['p50']:.1f} | "
                f"{r['p99']:.1f} | {r['cpu_ms_per_delivery']:.2f} | {load:.1f} |"
            )
    block = "\n".join(
        [
            "<!-- notify-publish:begin -->",
            "## notify: Publish -> 10 local HTTP subscribers (`bench/notify_bench.py --publish-only`)",
            "",
            f"CPython {platform.python_version()}, SQLite, {os.cpu_count()} cores shared with other work, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {seconds:.0f} s of publishing per row. The 10 subscribers "
            "(HTTP/1.1 keep-alive servers) run in a process of their own; latency is Publish's start to "
            "the subscriber's receipt, over every delivery. CPU is the publishing and delivering process's, "
            "per delivery (publish included). Load is the 1-minute load average when the row started; "
            "a baseline row runs the whole `src` tree of that revision with this bench.",
            "",
            "| src tree | rate | deliveries | p50 ms | p99 ms | CPU ms/delivery | load |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "<!-- notify-publish:end -->",
        ]
    )
    print(block)
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(r"<!-- notify-publish:begin -->.*?<!-- notify-publish:end -->", re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(new)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--publish-child":
        _publish_child(float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--round-alarms", type=int, default=10_000)
    parser.add_argument(
        "--publish-only", action="store_true", help="only Publish latency, at --rates, in its own section"
    )
    parser.add_argument("--rates", default="100,20", help="with --publish-only: comma-separated msg/s")
    parser.add_argument("--baseline", help="with --publish-only: also the src tree of this git revision")
    args = parser.parse_args()
    if args.publish_only:
        publish_section(args.seconds, [float(r) for r in args.rates.split(",")], args.baseline)
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pub = bench_publish(tmp, args.seconds, args.rate)
        rules_cpu = bench_rules(10_000)
        wall, cpu, wall2, cpu2 = bench_round(tmp, args.round_alarms)
        put_rate = bench_put(tmp, 200, 20)
    lines = [
        "<!-- notify:begin -->",
        "## notify: topics, alarms, metrics (`bench/notify_bench.py`)",
        "",
        f"CPython {platform.python_version()}, SQLite in a temporary directory, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"1-minute load average {load:.1f} at the start ({os.cpu_count()} cores). Latency and "
        "datapoints/s are wall-clock figures and suffer from load; CPU figures much less.",
        "",
        "| work | figure |",
        "|---|---|",
        f"| Publish -> 10 local HTTP subscribers, {pub['messages']} messages at {pub['rate']:.0f}/s "
        f"({pub['deliveries']} deliveries, signed SHA1withRSA) | p50 {pub['p50']:.1f} ms, p99 {pub['p99']:.1f} ms |",
        f"| alarm rules (pure `evaluate`), 10,000 alarms | {rules_cpu * 1000:.0f} ms CPU |",
        f"| evaluation round with the database, {args.round_alarms} alarms, all transitioning (first round) | "
        f"{wall:.2f} s wall, {cpu:.2f} s CPU |",
        f"| evaluation round with the database, {args.round_alarms} alarms, steady (no transition) | "
        f"{wall2:.2f} s wall, {cpu2:.2f} s CPU |",
        f"| PutMetricData, 20 datapoints per call | {put_rate:,.0f} datapoints/s |",
        "<!-- notify:end -->",
    ]
    block = "\n".join(lines)
    print(block)
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(r"<!-- notify:begin -->.*?<!-- notify:end -->", re.S)
    new = pattern.sub(block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(new)


if __name__ == "__main__":
    main()
