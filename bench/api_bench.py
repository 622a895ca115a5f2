"""API benchmarks on the embedded defaults (`tailrace up`, SQLite, one process):

1. DescribePipelines from 8 concurrent client processes for a fixed time: calls/s, p50, p99
   (target 500 calls/s with p99 under 50 ms). Two client kinds: boto3 (what users run) and a
   light SigV4-signing HTTP client (tailrace.api.client), which leaves more CPU to the server.
2. `tailrace list-runs` over a pipeline with 10,000 instances (target under 1 s): the whole
   command as a child process (and its start-up alone), the server's CPU for it, its one REST
   call, and for comparison the AWS path (QueryObjects and DescribeObjects page by page).

    .venv/bin/python bench/api_bench.py [--duration 10] [--clients 8] [--instances 10000] [--repeat 5]

With --scale, instead (its own section of RESULTS.md): `tailrace up` on PostgreSQL with
--api-processes API processes; DescribePipelines from 8 and from 200 concurrent clients
(signed-http, threads spread over client processes): calls/s, p50, p99, errors; then, on a fresh
server, its peak memory while 120 unauthenticated clients each send a 24 MiB POST.

    .venv/bin/python bench/api_bench.py --scale [--postgres URL] [--api-processes 2] [--duration 10]
    .venv/bin/python bench/api_bench.py --scale --loads 8 --duration 4 --no-flood   # CPU per call, quickly

Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
RESULTS = REPO / "bench" / "RESULTS.md"
BEGIN, END = "<!-- api_bench:begin -->", "<!-- api_bench:end -->"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- setup ----------------------------------------------------------------------------------------


def build_data(home: Path, instances: int) -> tuple[str, str]:
    """A small pipeline to describe, and one with `instances` instances (15-minute periods
    backfilled by the real scheduler), in <home>/tailrace.db."""
    from tailrace.clock import SystemClock, format_dp
    from tailrace.definition import from_file_dict
    from tailrace.runtime.scheduler import Scheduler
    from tailrace.runtime.service import PipelineService
    from tailrace.state import open_store

    store = open_store(f"sqlite:///{home.resolve()}/tailrace.db")
    service = PipelineService(store=store, home=home.resolve())
    small = service.create_pipeline("describe-me", "describe-me", owner="default", tags={"bench": "api"})
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=15 * instances)
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Every15"}},
            {"id": "Every15", "type": "Schedule", "period": "15 minutes", "startDateTime": format_dp(start)},
            {"id": "Job", "type": "ShellCommandActivity", "command": "true", "workerGroup": "bench-nobody"},
        ]
    }
    for pid in (small, big := service.create_pipeline("runs", "runs-10k", owner="default")):
        service.put_definition(pid, from_file_dict(definition)).raise_for_errors()
    service.activate(big)
    scheduler = Scheduler(store=store, transitions=service.transitions, clock=SystemClock())
    began = time.monotonic()
    while True:
        report = scheduler.tick()
        with store.transaction(readonly=True) as tx:
            n = sum(tx.instances.count(big).values())
        print(f"\r  scheduler created {n:,} instances ({time.monotonic() - began:.0f} s)", end="", flush=True)
        if n >= instances or not report.busy:
            break
    print()
    store.close()
    store.engine.dispose()
    return small, big


def start_up(home: Path, **extra_env: str) -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env["TAILRACE_HOME"] = str(home)
    env.update(extra_env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tailrace",
            "up",
            "--s3-port",
            "off",
            "--port",
            "0",
            "--worker-group",
            "bench-idle",
            "--no-resources",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            creds = json.loads((home / "credentials.json").read_text())
            return proc, m.group(1), creds
    raise SystemExit("tailrace up did not start")


# --- DescribePipelines load ------------------------------------------------------------------------


def client_loop(
    kind: str, url: str, creds: dict[str, str], pid: str, duration: float, start_at: float, out: mp.Queue
) -> None:  # type: ignore[type-arg]
    if kind == "boto3":
        import boto3
        from botocore.config import Config

        dp = boto3.client(
            "datapipeline",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1}),
        )

        def call() -> None:
            dp.describe_pipelines(pipelineIds=[pid])
    else:
        from tailrace.api.client import DataPipelineClient

        client = DataPipelineClient(url, creds["AccessKeyId"], creds["SecretAccessKey"])

        def call() -> None:
            client.call("DescribePipelines", pipelineIds=[pid])

    call()  # connect and warm up before the common start
    while time.time() < start_at:
        time.sleep(0.001)
    latencies: list[float] = []
    errors = 0
    end = start_at + duration
    while time.time() < end:
        t0 = time.perf_counter()
        try:
            call()
        except Exception:
            errors += 1
            continue
        latencies.append(time.perf_counter() - t0)
    out.put((latencies, errors))


def load(
    kind: str, url: str, creds: dict[str, str], pid: str, clients: int, duration: float
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0 + 0.5 * clients
    procs = [
        ctx.Process(target=client_loop, args=(kind, url, creds, pid, duration, start_at, queue))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=duration + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for lat, _ in results for x in lat]
    return {
        "calls": len(latencies),
        "errors": sum(e for _, e in results),
        "rate": len(latencies) / duration,
        "p50": pct(latencies, 0.50) * 1000,
        "p99": pct(latencies, 0.99) * 1000,
        "max": max(latencies) * 1000,
    }


# --- list-runs ------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def list_runs(
    url: str, creds: dict[str, str], home: Path, pid: str, repeat: int, server_pid: int
) -> dict[str, Any]:
    """The whole `tailrace list-runs` command as a user runs it (a new process each time, JSON
    out), its start-up alone (the same command with --help: interpreter, imports, parser), and
    the reads page by page from this process, one call at a time."""
    window = "2000-01-01T00:00:00,2100-01-01T00:00:00"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(TAILRACE_HOME=str(home), TAILRACE_ENDPOINT=url)
    argv = [
        sys.executable,
        "-m",
        "tailrace",
        "list-runs",
        "--pipeline-id",
        pid,
        "--schedule-interval",
        window,
    ]
    walls: list[float] = []
    server: list[float] = []
    startups: list[float] = []
    rows = 0
    for i in range(repeat + 1):  # the first run warms the server's caches and is not counted
        before = _cpu_seconds(server_pid)
        t0 = time.perf_counter()
        done = subprocess.run(
            [*argv, "--output", "json"], env=env, capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - t0
        after = _cpu_seconds(server_pid)
        rows = len(json.loads(done.stdout))
        t0 = time.perf_counter()
        subprocess.run([*argv, "--help"], env=env, capture_output=True, check=True)
        startup = time.perf_counter() - t0
        if i:
            walls.append(wall)
            startups.append(startup)
            if before is not None and after is not None:
                server.append(after - before)

    from tailrace.api.client import DataPipelineClient
    from tailrace.cli.runs import run_query

    client = DataPipelineClient(url, creds["AccessKeyId"], creds["SecretAccessKey"])
    query = run_query(
        argparse.Namespace(status=None, start_interval=None, schedule_interval=window), datetime.now(UTC)
    )
    from tailrace.cli.runs import runs_params

    runs_calls: list[float] = []
    path = f"/api/v1/pipelines/{pid}/runs"
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = client.rest("GET", path, query=runs_params(query))
        runs_calls.append(time.perf_counter() - t0)
        assert len(got["runs"]) == rows and not got["truncated"]

    query_pages: list[float] = []
    describe_pages: list[float] = []
    aws_reads: list[float] = []
    for _ in range(repeat):
        began = time.perf_counter()
        ids: list[str] = []
        marker = None
        while True:
            t0 = time.perf_counter()
            page = client.call(
                "QueryObjects",
                pipelineId=pid,
                sphere="INSTANCE",
                query=query,
                limit=500,
                **({"marker": marker} if marker else {}),
            )
            query_pages.append(time.perf_counter() - t0)
            ids += page["ids"]
            marker = page.get("marker")
            if not page["hasMoreResults"]:
                break
        for i in range(0, len(ids), 100):
            t0 = time.perf_counter()
            client.call("DescribeObjects", pipelineId=pid, objectIds=ids[i : i + 100])
            describe_pages.append(time.perf_counter() - t0)
        aws_reads.append(time.perf_counter() - began)
    return {
        "runs_calls": runs_calls,
        "aws_reads": aws_reads,
        "rows": rows,
        "walls": walls,
        "server": server,
        "startups": startups,
        "query_pages": query_pages,
        "describe_pages": describe_pages,
    }


# --- scale: several API processes on PostgreSQL, many clients, a memory flood ------------------------


def thread_client_loop(
    url: str, creds: dict[str, str], pid: str, threads: int, duration: float, start_at: float, out: mp.Queue
) -> None:  # type: ignore[type-arg]
    """`threads` closed-loop clients in one process (200 interpreters would not fit the machine)."""
    import threading

    from tailrace.api.client import DataPipelineClient

    lat: list[list[float]] = [[] for _ in range(threads)]
    errs = [0] * threads

    def one(i: int) -> None:
        client = DataPipelineClient(url, creds["AccessKeyId"], creds["SecretAccessKey"], timeout=30)
        client.call("DescribePipelines", pipelineIds=[pid])
        while time.time() < start_at:
            time.sleep(0.002)
        end = start_at + duration
        while time.time() < end:
            t0 = time.perf_counter()
            try:
                client.call("DescribePipelines", pipelineIds=[pid])
            except Exception:
                errs[i] += 1
                continue
            lat[i].append(time.perf_counter() - t0)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    while time.time() < start_at:
        time.sleep(0.002)
    cpu0 = time.process_time()  # this process's CPU over the measured window (all its threads)
    for t in ts:
        t.join()
    out.put(([x for xs in lat for x in xs], sum(errs), time.process_time() - cpu0))


def load_threads(
    url: str, creds: dict[str, str], pid: str, clients: int, duration: float, server_pid: int | None = None
) -> dict[str, float]:
    """Closed-loop DescribePipelines from `clients` threads; with `server_pid`, also the CPU
    per call of the server (that process and its children) and of the client processes."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs_n = min(clients, 8)
    split = [clients // procs_n + (1 if i < clients % procs_n else 0) for i in range(procs_n)]
    start_at = time.time() + 5.0 + 0.02 * clients
    procs = [
        ctx.Process(target=thread_client_loop, args=(url, creds, pid, n, duration, start_at, queue))
        for n in split
    ]
    for p in procs:
        p.start()
    server_cpu = 0.0
    if server_pid is not None:
        pids = _tree(server_pid)
        while time.time() < start_at:
            time.sleep(0.002)
        cpu0 = sum(_cpu_seconds(p) or 0.0 for p in pids)
        time.sleep(max(0.0, start_at + duration - time.time()))
        server_cpu = sum(_cpu_seconds(p) or 0.0 for p in pids) - cpu0
    results = [queue.get(timeout=duration + 180) for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for lat, _, _ in results for x in lat]
    calls = max(1, len(latencies))
    return {
        "calls": len(latencies),
        "errors": sum(e for _, e, _ in results),
        "rate": len(latencies) / duration,
        "p50": pct(latencies, 0.50) * 1000,
        "p99": pct(latencies, 0.99) * 1000,
        "max": max(latencies) * 1000,
        "server_ms": server_cpu / calls * 1000,
        "client_ms": sum(c for _, _, c in results) / calls * 1000,
    }


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """pid and its children (the extra API processes)."""
    out = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError):
            pass
    return out


def flood(url: str, server_pid: int, posts: int = 120, size: int = 24 << 20) -> dict[str, Any]:
    """`posts` concurrent unauthenticated POSTs, each declaring and sending `size` bytes, while
    the server's resident memory (all its processes) is sampled."""
    import socket
    import threading
    from urllib.parse import urlsplit

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

    def post() -> None:
        n = 0
        status = "no answer"
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=60) as s:
                s.sendall(
                    (
                        f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {size}\r\n"
                        "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: DataPipeline.DescribePipelines\r\n\r\n"
                    ).encode()
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
    ts = [threading.Thread(target=post) for _ in range(posts)]
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


def scale(args: argparse.Namespace) -> None:
    from tailrace.state.testing import temporary_schema

    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tailrace-api-scale-") as tmp,
        temporary_schema(args.postgres) as url,
    ):
        home = Path(tmp) / "home"
        home.mkdir()
        env = {"TAILRACE_DATABASE_URL": url, "TAILRACE_API_PROCESSES": str(args.api_processes)}
        proc, endpoint, creds = start_up(home, **env)
        try:
            from tailrace.api.client import DataPipelineClient

            client = DataPipelineClient(endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
            pid = client.call("CreatePipeline", name="describe-me", uniqueId="describe-me")["pipelineId"]
            load_avg = os.getloadavg()[0]
            for clients in args.loads:
                print(
                    f"DescribePipelines, {clients} clients, {args.api_processes} API process(es), {args.duration:.0f} s ..."
                )
                results[clients] = r = load_threads(endpoint, creds, pid, clients, args.duration, proc.pid)
                print(
                    f"  {r['rate']:.0f} calls/s, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, errors {r['errors']}; "
                    f"CPU per call: server {r['server_ms']:.2f} ms, clients {r['client_ms']:.2f} ms"
                )
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        if args.no_flood:
            return
        print("120 unauthenticated 24 MiB POSTs on a fresh server ...")
        proc, endpoint, _ = start_up(home, TAILRACE_DATABASE_URL=url)
        try:
            time.sleep(1.0)
            mem = flood(endpoint, proc.pid)
            print(f"  {mem}")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    cpu = platform.processor() or platform.machine()
    body = (
        f"""## API at scale: several processes on PostgreSQL, 200 clients, an unauthenticated flood (`bench/api_bench.py --scale`)

Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores ({cpu}), shared with other work (load average
{load_avg:.2f} when the load started), CPython {platform.python_version()}. Server: `tailrace up` on PostgreSQL
(local) with `api_processes = {args.api_processes}`, scheduler and runners idle; clients on the same machine
(signed-http, `tailrace.api.client`, keep-alive; threads spread over up to 8 client processes).

DescribePipelines of one pipeline for {args.duration:.0f} s:

| clients | calls/s | p50 ms | p99 ms | max ms | errors | server CPU ms/call | client CPU ms/call |
|---|---|---|---|---|---|---|---|
"""
        + "".join(
            f"| {c} | {r['rate']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.0f} | {r['errors']} "
            f"| {r['server_ms']:.2f} | {r['client_ms']:.2f} |\n"
            for c, r in results.items()
        )
        + f"""
Goals: at 8 clients ≥ 1,000 calls/s with p99 < 50 ms; at 200 clients p99 < 1 s and no errors. The clients
run on the same cores as the server, so the figures are a floor for a server with its own machine. CPU per
call: user + system time of all the API processes (server) and of the client processes over the measured
window, divided by the calls answered (PostgreSQL's own CPU is in neither).

120 unauthenticated POSTs, each declaring and trying to send 24 MiB, all at once, on a fresh single-process
server: its resident memory went from {mem["before_mib"]:.0f} MiB to a peak of **{mem["peak_mib"]:.0f} MiB** (goal < 200 MiB);
answers {mem["statuses"]}; {mem["sent_mib"]:.0f} MiB left the clients in {mem["seconds"]:.1f} s (the server answers
after the headers and reads no body).
"""
    )
    print(body)
    if not args.no_write:
        write_section(body, begin="<!-- api_scale_bench:begin -->", end="<!-- api_scale_bench:end -->")


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--instances", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--scale", action="store_true", help="the PostgreSQL / many-clients / flood benchmark")
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--api-processes", type=int, default=2)
    ap.add_argument(
        "--loads",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[8, 200],
        help="--scale: the client counts to run, comma-separated (default 8,200)",
    )
    ap.add_argument(
        "--no-flood",
        action="store_true",
        help="--scale: only the loads (a short CPU-per-call check); writes nothing",
    )
    args = ap.parse_args()
    if args.scale:
        scale(args)
        return

    with tempfile.TemporaryDirectory(prefix="tailrace-api-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        print(f"setting up {args.instances:,} instances in {home} ...")
        small, big = build_data(home, args.instances)
        proc, url, creds = start_up(home)
        try:
            load_avg = os.getloadavg()[0]
            loads = {}
            for kind in ("signed-http", "boto3"):
                print(f"DescribePipelines, {args.clients} {kind} client processes, {args.duration:.0f} s ...")
                loads[kind] = r = load(kind, url, creds, small, args.clients, args.duration)
                print(
                    f"  {r['rate']:.0f} calls/s, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, errors {r['errors']}"
                )
            print(f"list-runs over {args.instances:,} instances ...")
            runs = list_runs(url, creds, home, big, args.repeat, proc.pid)
            print(
                f"  {runs['rows']} rows; command {statistics.median(runs['walls']):.2f} s (start-up "
                f"{statistics.median(runs['startups']):.2f} s, runs call "
                f"{statistics.median(runs['runs_calls']):.2f} s); QueryObjects "
                f"{statistics.median(runs['query_pages']) * 1000:.1f} ms/page, DescribeObjects "
                f"{statistics.median(runs['describe_pages']) * 1000:.1f} ms/page"
            )
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)

    cpu = platform.processor() or platform.machine()
    body = (
        f"""## API: DescribePipelines load and list-runs (`bench/api_bench.py`)

Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores ({cpu}), CPython {platform.python_version()};
load average {load_avg:.2f} when the load started. Server: `tailrace up` on the embedded defaults (SQLite, one
process, scheduler and embedded runners idle), on the same machine as the clients.

DescribePipelines of one pipeline, {args.clients} client processes in closed loops for {args.duration:.0f} s
(every request SigV4-signed and verified; keep-alive connections):

| clients | calls/s | p50 ms | p99 ms | max ms | errors |
|---|---|---|---|---|---|
"""
        + "".join(
            f"| {args.clients} × {kind} | {r['rate']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.0f} | {r['errors']} |\n"
            for kind, r in loads.items()
        )
        + f"""
Targets: 500 calls/s, p99 under 50 ms. `signed-http` is tailrace's own client (`tailrace.api.client`, used by
the CLI); boto3 spends ~2-3 ms of CPU per call parsing and signing, which on {os.cpu_count()} shared cores comes out
of the server's share.

`tailrace list-runs --schedule-interval ...` over one pipeline with {runs["rows"]:,} instances, as a user runs it: a new
process each time, JSON out; the first of {args.repeat + 1} runs warms the server and is left out. The command reads
the rows in one call, `GET /api/v1/pipelines/ID/runs` (the same rows the AWS CLI builds from QueryObjects and
DescribeObjects; tests/service/test_runs.py holds them equal):

| measure | median | runs |
|---|---|---|
| whole command (start-up, the call, JSON out) | {statistics.median(runs["walls"]):.2f} s | {", ".join(f"{x:.2f}" for x in runs["walls"])} |
| of which start-up (the same command with `--help`: interpreter, imports, parser) | {statistics.median(runs["startups"]):.2f} s | {", ".join(f"{x:.2f}" for x in runs["startups"])} |
| server CPU per command | {_med(runs["server"])} | {", ".join(f"{x:.2f}" for x in runs["server"])} |
| `GET .../runs`, the one call (from a warm client) | {statistics.median(runs["runs_calls"]):.2f} s | {", ".join(f"{x:.2f}" for x in runs["runs_calls"])} |

Target: under 1 s, {"met" if statistics.median(runs["walls"]) < 1 else "**not met**"}.

For comparison, the path `aws datapipeline list-runs` and boto3 scripts take (QueryObjects pages of 500, then
DescribeObjects pages of 100, one call at a time, tailrace's own client):

| measure | median | p90 |
|---|---|---|
| all the reads for {runs["rows"]:,} rows | {statistics.median(runs["aws_reads"]):.2f} s | {pct(runs["aws_reads"], 0.9):.2f} s |
| QueryObjects, one page of 500 ids ({len(runs["query_pages"])} calls) | {statistics.median(runs["query_pages"]) * 1000:.1f} ms | {pct(runs["query_pages"], 0.9) * 1000:.1f} ms |
| DescribeObjects, one page of 100 instances ({len(runs["describe_pages"])} calls) | {statistics.median(runs["describe_pages"]) * 1000:.1f} ms | {pct(runs["describe_pages"], 0.9) * 1000:.1f} ms |
"""
    )
    print(body)
    if not args.no_write:
        write_section(body)


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "n/a"


def write_section(body: str, *, begin: str = BEGIN, end: str = END) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
