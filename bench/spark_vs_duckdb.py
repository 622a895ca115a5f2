"""Benchmark: the seed script on DuckDB vs Spark standalone (2 workers) vs Spark local, side by side.

    .venv/bin/python bench/spark_vs_duckdb.py                   # 5M lines, 8 gzip files
    .venv/bin/python bench/spark_vs_duckdb.py --lines 1000000 --no-write

One run: generate the input (bench/hive_logs.py's generator) under a fresh TAILRACE_HOME, then
(a) `tailrace hive -f whatislog.q` (DuckDB) as a child process: wall and CPU from wait4();
(b) a child process driving Spark standalone, one master and two workers (1 core each) started
    from pyspark's bin/spark-class; (c) a child process on Spark local[2]. In (b) and (c) the CPU
    is the driver's Python and JVM plus, for (b), every cluster process (master, workers, their
    executors), read from /proc before and after. Each Spark child also reports the session start
    (JVM + SparkSession), the seed run on the cold session, the seed again on the warm session,
    and the per-attempt overhead with the warm session (a one-row script through the engine
    port, 5 times). All outputs are compared byte for byte. Figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

SCRIPT = REPO / "src" / "tailrace" / "sample" / "whatislog.q"
DATE = "20121221"
START, END = "<!-- spark_vs_duckdb:start -->", "<!-- spark_vs_duckdb:end -->"
TICK = os.sysconf("SC_CLK_TCK")


def tree(pids: list[int]) -> set[int]:
    """The processes and all their descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += children.get(p, [])
    return out


def cpu_of(pids: set[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def outputs(home: Path) -> dict[str, str]:
    base = home / "s3" / "memorycraft-log-archive"
    return {
        name: hashlib.sha256((base / name / DATE / "000000_0").read_bytes()).hexdigest()
        for name in ("archives", "stats")
    }


def clear_outputs(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "s3" / "memorycraft-log-archive", ignore_errors=True)


# --- the Spark child ----------------------------------------------------------------------------


def spark_child(mode: str, home: Path, work: Path) -> dict[str, object]:
    import sqlalchemy as sa

    from tailrace.engines.abc import EngineSetup, ScriptRequest
    from tailrace.engines.metastore import SqlMetastore
    from tailrace.engines.registry import EngineRegistry
    from tailrace.engines.spark import session as sessions
    from tailrace.engines.spark.engine import open_hive
    from tailrace.engines.spark.session import SparkOptions
    from tailrace.engines.spark.standalone import StandaloneCluster
    from tailrace.runtime.context import ListLog
    from tailrace.storage import Storage

    cluster = None
    result: dict[str, object] = {"mode": mode}
    if mode == "standalone":
        t0 = time.perf_counter()
        cluster = StandaloneCluster(workers=2, cores=1, memory="2g", work_dir=work / "cluster").start()
        result["cluster_start_s"] = round(time.perf_counter() - t0, 1)
        master = cluster.master_url
        conf = (("spark.executor.memory", "1g"),)
    else:
        master = "local[2]"
        conf = (("spark.driver.memory", "2g"),)
    options = SparkOptions(master=master, staging_dir=work / "staging", conf=conf)
    storage = Storage(home=home)
    metastore = SqlMetastore(sa.create_engine(f"sqlite:///{work / 'meta.db'}"))
    cluster_pids = [p.pid for p in cluster.procs] if cluster else []
    try:
        t0 = time.perf_counter()
        shared, _ = sessions.acquire(options)
        result["session_start_s"] = round(time.perf_counter() - t0, 1)
        jvm = shared.sparkContext._gateway.proc.pid

        def cpu() -> float:
            own = os.times()
            return own.user + own.system + cpu_of(tree([jvm, *cluster_pids]))

        for label in ("seed_cold", "seed_warm"):
            clear_outputs(home)
            c0, t0 = cpu(), time.perf_counter()
            hive = open_hive(storage, metastore, shared, options)
            try:
                hive.run_script(SCRIPT.read_text(), {"DATE": DATE}, source="whatislog.q")
            finally:
                hive.close()
            result[f"{label}_wall_s"] = round(time.perf_counter() - t0, 2)
            result[f"{label}_cpu_s"] = round(cpu() - c0, 1)
            result[f"{label}_outputs"] = outputs(home)
        sessions.release(shared)
        # Per-attempt overhead on the warm session: the engine port, as a worker runs an attempt.
        registry = EngineRegistry(
            EngineSetup(storage=storage, metastore_for=lambda _o: metastore, settings={"spark": options})
        )
        walls = []
        for i in range(5):
            engine = registry.create("spark")
            t0 = time.perf_counter()
            try:
                engine.run(
                    ScriptRequest(text="SELECT 1", source="tiny.q", work_dir=work / f"tiny{i}", log=ListLog())
                )
            finally:
                engine.close()
            walls.append(round(time.perf_counter() - t0, 2))
        result["attempt_overhead_s"] = walls
    finally:
        sessions.shutdown()
        if cluster is not None:
            cluster.stop()
    return result


# --- the parent ---------------------------------------------------------------------------------


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:5]} failed:\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md")
    parser.add_argument("--child", choices=("standalone", "local"), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(spark_child(args.child, args.home, args.work)))
        return

    from hive_logs import generate, machine

    with tempfile.TemporaryDirectory(prefix="tailrace-spark-bench-") as tmp:
        home = Path(tmp) / "home"
        root = home / "s3" / "memorycraft-log" / "logs" / DATE
        t0 = time.perf_counter()
        files = generate(root, args.lines, args.files)
        size = sum(f.stat().st_size for f in files)
        print(f"generated {args.lines:,} lines ({size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
        env = {**os.environ, "TAILRACE_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
        wall, cpu, _ = run_child(
            [sys.executable, "-m", "tailrace", "hive", "-S", "-f", str(SCRIPT), "-d", f"DATE={DATE}"], env
        )
        duck = {"wall": round(wall, 2), "cpu": round(cpu, 1), "outputs": outputs(home)}
        print("duckdb", duck)
        spark: dict[str, dict[str, object]] = {}
        for mode in ("standalone", "local"):
            work = Path(tmp) / f"work-{mode}"
            work.mkdir()
            _, _, out = run_child(
                [sys.executable, __file__, "--child", mode, "--home", str(home), "--work", str(work)], env
            )
            spark[mode] = json.loads(out.strip().splitlines()[-1])
            print(mode, spark[mode])
        same = all(
            spark[m][f"{k}_outputs"] == duck["outputs"] for m in spark for k in ("seed_cold", "seed_warm")
        )
        text = section(args, size, duck, spark, same, machine())
    if args.no_write:
        print(text)
    else:
        write(text)
        print(text)


def section(args: argparse.Namespace, size: int, duck: dict, spark: dict, same: bool, where: str) -> str:
    s, loc = spark["standalone"], spark["local"]
    rows = [
        "| | wall s | CPU s | session start s |",
        "|---|---|---|---|",
        f"| (a) DuckDB (`tailrace hive`, child process) | {duck['wall']} | {duck['cpu']} | — |",
    ]
    for name, r in (("(b) Spark standalone, 2 workers", s), ("(c) Spark local[2]", loc)):
        rows.append(
            f"| {name}: cold session | {r['seed_cold_wall_s']} | {r['seed_cold_cpu_s']} | {r['session_start_s']} |"
        )
        rows.append(f"| {name}: warm session | {r['seed_warm_wall_s']} | {r['seed_warm_cpu_s']} | 0 |")
    overhead = (
        f"standalone {', '.join(map(str, s['attempt_overhead_s']))} s; "
        f"local {', '.join(map(str, loc['attempt_overhead_s']))} s"
    )
    return "\n".join(
        [
            "## Hive on Spark: seed script, DuckDB vs Spark standalone vs Spark local (`bench/spark_vs_duckdb.py`)",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on: {where}.",
            "",
            f"Input: {args.lines:,} fluentd lines in {args.files} gzip files ({size / 2**20:.1f} MiB), "
            "generated by bench/hive_logs.py's generator; the seed script verbatim. All three in one run, "
            "one after the other. Outputs byte-identical on all engines (cold and warm runs): "
            f"**{'yes' if same else 'NO'}**.",
            "",
            *rows,
            "",
            f"Cluster start (master + 2 workers from bin/spark-class): {s.get('cluster_start_s')} s. "
            "Session start is JVM + SparkSession (+ first executors on the cluster), paid once per worker "
            "process. CPU of (b) includes the master, both workers and their executors; of (c) the driver JVM.",
            "",
            f"Per-attempt overhead on a warm session (`SELECT 1` through the engine port, 5 attempts): {overhead}.",
        ]
    )


def write(text: str) -> None:
    path = REPO / "bench" / "RESULTS.md"
    body = path.read_text()
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in body and END in body:
        body = body[: body.index(START)] + block + body[body.index(END) + len(END) :]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    path.write_text(body)


if __name__ == "__main__":
    main()
