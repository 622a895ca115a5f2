"""[duckdb] settings: parsed, applied to DuckDB (current_setting), spilling under a small limit,
one host budget shared by concurrent runs (flock'ed slots), parallel .gz decompression."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hive_helpers import SEED, write_gz, write_text
from hive_reference import seed_outputs
from test_hive_seed import DATE, fluentd_input, outputs, place_input

from tailrace.config import DuckDBSettings, load_settings
from tailrace.engines.abc import EngineSetup, HiveError, ScriptInterrupted, ScriptRequest
from tailrace.engines.hive import HiveEngine
from tailrace.engines.hive.resources import DuckDBResources, SlotWaitCancelled
from tailrace.engines.metastore import MemoryMetastore
from tailrace.engines.registry import EngineRegistry
from tailrace.errors import ConfigError
from tailrace.runtime.context import ListLog
from tailrace.services import build_services
from tailrace.storage import Storage

MiB = 2**20


def _settings(tmp_path: Path, toml: str) -> object:
    path = tmp_path / "tailrace.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n' + toml)
    return load_settings(environ={}, config_file=path)


# --- settings -------------------------------------------------------------------------------


def test_settings_from_the_file_and_environment_reach_duckdb(tmp_path):
    settings = _settings(
        tmp_path,
        f'[duckdb]\nmemory_limit = "300MiB"\nthreads = 1\ntemp_directory = "{tmp_path / "sp"}"\n'
        'max_temp_size = "2GiB"\n',
    )
    services = build_services(settings)  # type: ignore[arg-type]
    try:
        engine = services.hive_engine(owner="alice")
        try:
            got = engine.settings()
        finally:
            engine.close()
    finally:
        services.close()
    assert got["memory_limit"] == "300.0 MiB"
    assert got["threads"] == "1"
    assert got["max_temp_directory_size"] == "2.0 GiB"
    spill = Path(got["temp_directory"])
    assert spill.is_relative_to(tmp_path / "sp" / "runs" / "alice")
    assert not spill.exists()  # removed with the run

    env = load_settings(environ={"TAILRACE_DUCKDB__HOST_MEMORY": "1GiB", "TAILRACE_DUCKDB__CONCURRENT": "4"})
    res = DuckDBResources(env.duckdb, home=tmp_path, workers=env.workers)
    assert (res.host_memory, res.slots, res.per_run) == (2**30, 4, 2**30 // 4)


def test_an_attempt_logs_the_limits_duckdb_reports(tmp_path):
    home = tmp_path / "home"
    write_text(home / "s3" / "b" / "in" / "part-0", ["a\t1", "b\t2"])
    resources = DuckDBResources(
        DuckDBSettings(host_memory="512MiB", concurrent=2, threads=1), home=home, workers=4
    )
    setup = EngineSetup(
        storage=Storage(home=home), metastore_for=lambda _o: MemoryMetastore(), duckdb=resources
    )
    engine = EngineRegistry(setup).create("duckdb")
    log = ListLog()
    seen: list[dict[str, str]] = []

    def peek(_res: object) -> None:  # DuckDB's own settings, read while the attempt runs
        running = engine._running  # type: ignore[attr-defined]
        seen.append(running.settings())

    engine.run(
        ScriptRequest(
            text="CREATE EXTERNAL TABLE t (k string, v int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
            "LOCATION 's3://b/in'; SELECT count(*) FROM t",
            owner="bob",
            work_dir=tmp_path / "work",
            log=log,
            on_statement=peek,
        )
    )
    text = "".join(log.parts)
    assert "duckdb: memory_limit=256.0 MiB, threads=1" in text
    assert str(home) not in text  # the spill directory is not shown to the owner
    assert seen[-1]["memory_limit"] == "256.0 MiB" and seen[-1]["threads"] == "1"
    assert Path(seen[-1]["temp_directory"]).is_relative_to(home / "spill" / "runs" / "bob")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('memory_limit = "lots"', "[duckdb] memory_limit = 'lots' is not a size"),
        ('memory_limit = "150%"', "[duckdb] memory_limit = '150%'"),
        ('host_memory = "-1GiB"', "[duckdb] host_memory = '-1GiB'"),
        ('max_temp_size = "10%"', "[duckdb] max_temp_size = '10%' is not a size such as 1GiB"),
        ("threads = 0", "[duckdb] threads must be 1 or more; found 0"),
        ('concurrent = "two"', "'duckdb.concurrent' has value 'two'; expected int"),
        ('memroy_limit = "1GiB"', "unknown key 'memroy_limit' in [duckdb]. Did you mean 'memory_limit'?"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, toml, message):
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, f"[duckdb]\n{toml}\n")
    assert message in str(err.value)
    assert "tailrace.toml" in str(err.value)


# --- spilling -------------------------------------------------------------------------------


def test_a_sort_larger_than_the_limit_spills_to_the_run_directory_and_is_right(tmp_path):
    home = tmp_path / "home"
    rng = random.Random(4)
    rows = [(f"{rng.randrange(1000):04d}", f"{i:07d}" + "x" * 180) for i in range(1_200_000)]  # ~230 MiB
    write_text(home / "s3" / "b" / "big" / "part-0", [f"{k}\t{v}" for k, v in rows])
    resources = DuckDBResources(
        DuckDBSettings(memory_limit="160MiB", threads=1, temp_directory=tmp_path / "spill"),
        home=home,
        workers=1,
    )
    engine = HiveEngine(
        Storage(home=home),
        MemoryMetastore(),
        work_dir=tmp_path / "work",
        grant=resources.acquire("carol"),
    )
    spilled: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            found = [p for p in (tmp_path / "spill" / "runs").rglob("*") if p.is_file()]
            spilled.append(sum(p.stat().st_size for p in found if p.exists()))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        engine.run_script(
            "CREATE EXTERNAL TABLE big (k string, v string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
            "LOCATION 's3://b/big';\n"
            "INSERT OVERWRITE DIRECTORY 's3://b/sorted' ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
            "SELECT k, v FROM big ORDER BY k"
        )
    finally:
        done.set()
        watcher.join()
        engine.close()
    assert (home / "s3" / "b" / "big" / "part-0").stat().st_size > 160 * MiB  # it cannot fit
    assert max(spilled) > 32 * MiB  # so it went to disk, under the run's own directory
    want = "".join(f"{k}\t{v}\n" for k, v in sorted(rows, key=lambda r: r[0]))  # stable: ties in input order
    assert (home / "s3" / "b" / "sorted" / "000000_0").read_text() == want
    assert list((tmp_path / "spill" / "runs" / "carol").iterdir()) == []  # cleaned up


# --- one budget per host --------------------------------------------------------------------


def test_runs_share_the_host_budget_and_wait_for_a_slot(tmp_path):
    res = DuckDBResources(DuckDBSettings(host_memory="512MiB", concurrent=2), home=tmp_path, workers=8)
    a, b = res.acquire("o1"), res.acquire("o2")
    assert a.limits.memory_limit == b.limits.memory_limit == 256 * MiB
    assert a.limits.temp_directory != b.limits.temp_directory
    gone = threading.Event()
    gone.set()
    with pytest.raises(SlotWaitCancelled):  # both slots held: a third run cannot start
        res.acquire("o3", cancelled=gone)
    a.release()
    c = res.acquire("o3", cancelled=gone)  # a freed slot is taken at once
    b.release()
    c.release()


def test_a_slot_held_by_another_process_counts_and_is_freed_when_it_dies(tmp_path):
    code = (
        "import sys; from pathlib import Path\n"
        "from tailrace.config import DuckDBSettings\n"
        "from tailrace.engines.hive.resources import DuckDBResources\n"
        f"r = DuckDBResources(DuckDBSettings(concurrent=1), home=Path({str(tmp_path)!r}), workers=1)\n"
        "g = r.acquire('other'); print('held', flush=True); sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        res = DuckDBResources(DuckDBSettings(concurrent=1), home=tmp_path, workers=1)
        gone = threading.Event()
        gone.set()
        with pytest.raises(SlotWaitCancelled):
            res.acquire("me", cancelled=gone)
        child.kill()  # no clean-up code runs: the kernel drops the lock
        child.wait()
        res.acquire("me", cancelled=gone).release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_second_attempt_waits_for_the_first_then_runs(tmp_path):
    home = tmp_path / "home"
    write_text(home / "s3" / "b" / "in" / "part-0", ["a\t1"])
    resources = DuckDBResources(DuckDBSettings(host_memory="256MiB", concurrent=1), home=home, workers=4)
    setup = EngineSetup(
        storage=Storage(home=home), metastore_for=lambda _o: MemoryMetastore(), duckdb=resources
    )
    registry = EngineRegistry(setup)
    ddl = "CREATE EXTERNAL TABLE t (k string, v int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://b/in'"
    first_in, first_go = threading.Event(), threading.Event()
    logs = [ListLog(), ListLog()]
    errors: list[BaseException] = []

    def hold(_res: object) -> None:
        first_in.set()
        first_go.wait(30)

    def run(i: int, on_statement: object) -> None:
        try:
            registry.create("duckdb").run(
                ScriptRequest(
                    text=ddl,
                    owner=f"o{i}",
                    work_dir=tmp_path / f"w{i}",
                    log=logs[i],
                    on_statement=on_statement,
                )  # type: ignore[arg-type]
            )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    first = threading.Thread(target=run, args=(0, hold))
    first.start()
    assert first_in.wait(30)
    second = threading.Thread(target=run, args=(1, None))
    second.start()
    for _ in range(300):
        if "waiting: all 1 DuckDB runs" in "".join(logs[1].parts):
            break
        time.sleep(0.05)
    assert "waiting: all 1 DuckDB runs this host allows are busy" in "".join(logs[1].parts)
    assert "duckdb: memory_limit" not in "".join(logs[1].parts)  # not started yet
    first_go.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert "duckdb: memory_limit=256.0 MiB" in "".join(logs[1].parts)


def test_a_run_canceled_while_waiting_for_a_slot_is_interrupted(tmp_path):
    resources = DuckDBResources(DuckDBSettings(concurrent=1), home=tmp_path, workers=1)
    held = resources.acquire("x")
    setup = EngineSetup(
        storage=Storage(home=tmp_path), metastore_for=lambda _o: MemoryMetastore(), duckdb=resources
    )
    gone = threading.Event()
    gone.set()
    try:
        with pytest.raises(ScriptInterrupted, match="waiting for a free DuckDB slot"):
            EngineRegistry(setup).create("duckdb").run(
                ScriptRequest(text="SELECT 1", work_dir=tmp_path / "w", log=ListLog(), cancelled=gone)
            )
    finally:
        held.release()


def test_owner_names_cannot_leave_the_spill_root(tmp_path):
    res = DuckDBResources(DuckDBSettings(), home=tmp_path, workers=2)
    for owner in ("..", "../../etc", "a/b", ""):
        grant = res.acquire(owner)
        try:
            spill = grant.limits.temp_directory
            assert spill is not None and spill.resolve().is_relative_to(
                (tmp_path / "spill" / "runs").resolve()
            )
            assert spill.parent.parent == (tmp_path / "spill" / "runs").resolve()
            assert oct(spill.stat().st_mode & 0o777) == "0o700"
        finally:
            grant.release()


# --- gzip inputs ----------------------------------------------------------------------------


def test_the_seed_output_is_the_same_with_and_without_parallel_decompression(tmp_path):
    got: dict[bool, tuple[bytes, bytes]] = {}
    for decompress in (True, False):
        home = tmp_path / f"home-{decompress}"
        ordered = place_input(home, fluentd_input(seed=9))
        resources = DuckDBResources(
            DuckDBSettings(decompress_gzip=decompress, threads=2), home=home, workers=1
        )
        work = tmp_path / f"w-{decompress}"
        engine = HiveEngine(Storage(home=home), MemoryMetastore(), work_dir=work, grant=resources.acquire(""))
        try:
            engine.run_script(SEED.read_text(), {"DATE": DATE})
            copies = (
                [p for p in (work / "decoded").rglob("*") if p.is_file()]
                if (work / "decoded").exists()
                else []
            )
            assert len(copies) == (3 if decompress else 0)  # one decompressed copy per input file
        finally:
            engine.close()
        assert not work.exists()
        archive, stats = outputs(home)
        got[decompress] = (archive.read_bytes(), stats.read_bytes())
    want_archive, want_stats, _, _ = seed_outputs(ordered, DATE)
    assert got[True] == got[False] == (want_archive, want_stats)


def test_a_corrupt_gz_input_is_a_clear_error_naming_the_file(tmp_path):
    home = tmp_path / "home"
    write_gz(home / "s3" / "b" / "in" / "a.gz", ["x\t1"])
    (home / "s3" / "b" / "in" / "b.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    engine = HiveEngine(Storage(home=home), MemoryMetastore(), work_dir=tmp_path / "w", threads=2)
    try:
        with pytest.raises(HiveError) as err:
            engine.run_script(
                "CREATE EXTERNAL TABLE t (k string, v int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
                "LOCATION 's3://b/in';\nSELECT count(*) FROM t"
            )
    finally:
        engine.close()
    assert "input file b.gz cannot be decompressed" in str(err.value)
    assert err.value.statement == 2


def test_a_run_out_of_memory_says_which_setting_to_raise(tmp_path):
    home = tmp_path / "home"
    write_text(home / "s3" / "b" / "in" / "part-0", [f"{i}\t{'y' * 100}" for i in range(40_000)])
    resources = DuckDBResources(DuckDBSettings(memory_limit="2MiB", threads=1), home=home, workers=1)
    engine = HiveEngine(
        Storage(home=home), MemoryMetastore(), work_dir=tmp_path / "w", grant=resources.acquire("")
    )
    try:
        with pytest.raises(HiveError) as err:
            engine.run_script(
                "CREATE EXTERNAL TABLE t (k string, v string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
                "LOCATION 's3://b/in';\nSELECT k FROM t ORDER BY v, k"
            )
    finally:
        engine.close()
    message = str(err.value)
    assert "statement 2: out of memory within this run's DuckDB memory_limit (2.0 MiB)" in message
    assert "[duckdb] section of tailrace.toml" in message
