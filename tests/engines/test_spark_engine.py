"""The spark engine on a real standalone cluster (a master and two workers, separate processes,
started once for the session by conftest.spark_cluster): the seed script byte for byte against
the DuckDB engine, the port contract, the session kept warm, owners, and bad input."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hive_helpers import SEED
from hive_reference import seed_outputs
from test_hive_seed import DATE, fluentd_input, outputs, place_input

from tailrace.engines.abc import EngineSetup, ScriptRequest
from tailrace.engines.hive import HiveError
from tailrace.engines.metastore import OwnerMetastore
from tailrace.engines.registry import EngineRegistry
from tailrace.runtime.context import ListLog
from tailrace.storage import Storage

pytestmark = pytest.mark.spark


def test_two_workers_serve_the_session(spark_session) -> None:
    import time

    sc = spark_session.sparkContext
    deadline = time.monotonic() + 60
    while sc._jsc.sc().getExecutorMemoryStatus().size() < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    # The driver plus one executor per worker process.
    assert sc._jsc.sc().getExecutorMemoryStatus().size() == 3
    assert sc.master.startswith("spark://")


def test_seed_script_is_byte_identical_to_the_duckdb_engine(spark_hive, hive, data_home, spark_options):
    ordered = place_input(data_home, fluentd_input())
    want_archive, want_stats, short, _bad = seed_outputs(ordered, DATE)
    result = spark_hive.run_script(SEED.read_text(), {"DATE": DATE}, source="whatislog.q")
    # Short lines are counted on Spark too; bad JSON is not (docs/engines.md).
    assert (result.malformed_lines, result.malformed_json) == (short, 0)
    archive, stats = outputs(data_home)
    spark_bytes = archive.read_bytes(), stats.read_bytes()
    assert spark_bytes == (want_archive, want_stats)
    assert sorted(p.name for p in archive.parent.iterdir()) == ["000000_0"]
    assert sorted(p.name for p in stats.parent.iterdir()) == ["000000_0"]
    assert result.statements[2].rows_written == want_archive.count(b"\n")
    # The DuckDB engine on the same input and metastore writes the same bytes.
    hive.run_script(SEED.read_text(), {"DATE": DATE}, source="whatislog.q")
    assert (archive.read_bytes(), stats.read_bytes()) == spark_bytes
    # The staging of the run (inputs, Spark's Parquet) is gone once it ended.
    assert not list(Path(spark_options.staging_dir).glob("run-*/results/*"))


def _registry(data_home: Path, metastore, spark_options) -> EngineRegistry:
    def metastore_for(owner: str):
        return OwnerMetastore(metastore, owner) if owner else metastore

    return EngineRegistry(
        EngineSetup(
            storage=Storage(home=data_home), metastore_for=metastore_for, settings={"spark": spark_options}
        )
    )


def test_port_contract_warm_session_and_owner_namespaces(data_home, metastore, spark_options, spark_session):
    registry = _registry(data_home, metastore, spark_options)
    assert registry.capabilities("spark").distributed
    # Managed tables (an owner's warehouse): local paths are refused for owners on a server.
    create = "CREATE TABLE t AS SELECT 'x' AS k, 1 AS v UNION ALL SELECT 'y', 2 UNION ALL SELECT 'x', 3"
    logs = []
    for owner in ("alice", "bob"):
        engine = registry.create("spark")
        log = ListLog()
        logs.append(log)
        try:
            request = ScriptRequest(
                text=create + ";\nSELECT k, sum(v) FROM t GROUP BY k",
                owner=owner,
                work_dir=data_home / "work",
                log=log,
            )
            if owner == "bob":
                # bob's namespace holds no table of alice's.
                with pytest.raises(HiveError, match="Table not found 'alice_only'"):
                    engine.run(
                        ScriptRequest(
                            text="SELECT * FROM alice_only", owner="bob", work_dir=data_home / "w2", log=log
                        )
                    )
            result = engine.run(request)
        finally:
            engine.close()
        assert result.statements[-1].select_rows == [("x", "4"), ("y", "2")]
        if owner == "alice":
            engine = registry.create("spark")
            try:
                engine.run(
                    ScriptRequest(
                        text=create.replace(" t ", " alice_only ", 1),
                        owner="alice",
                        work_dir=data_home / "w3",
                        log=log,
                    )
                )
            finally:
                engine.close()
    # The session started once (by the fixture): every run reused it.
    assert "reusing the session" in logs[1].text() and "per-attempt overhead" in logs[1].text()
    assert "session started" not in logs[1].text()


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT * FROM text.`/etc/passwd`", "not a table name"),
        ("SELECT * FROM parquet.`/etc`", "not a table name"),
        ("SELECT reflect('java.lang.System', 'getenv', 'HOME')", "reflect is not supported"),
        ("SELECT TRANSFORM(k) USING '/bin/cat' FROM t", "TRANSFORM"),
        ("SELECT input_file_name() FROM t", "Invalid function"),
    ],
)
def test_scripts_reach_files_and_code_only_through_tables(spark_hive, data_home, sql, message):
    folder = data_home / "in"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("x\n")
    spark_hive.run_script(f"CREATE EXTERNAL TABLE t (k string) LOCATION '{folder}'")
    with pytest.raises(HiveError) as info:
        spark_hive.run_script(sql, source="evil.q")
    assert message in str(info.value)
    assert str(info.value).startswith("evil.q:1:")


def test_spark_does_not_substitute_variables_of_its_own(spark_hive, monkeypatch):
    # tailrace substitutes ${env:NAME} itself (from nothing but locale and TZ in an owner's
    # script); Spark's own substitution would read the driver JVM's environment, which still
    # has HOME after it left this process's.
    monkeypatch.delenv("HOME", raising=False)
    result = spark_hive.run_script("SELECT '${env:HOME}', '${system:user.home}'")
    assert result.statements[0].select_rows == [("${env:HOME}", "${system:user.home}")]


def test_a_construct_spark_lacks_fails_located_and_writes_nothing(spark_hive, data_home):
    ordered = place_input(data_home, fluentd_input())
    want_archive, _, _, _ = seed_outputs(ordered, DATE)
    spark_hive.run_script(SEED.read_text(), {"DATE": DATE}, source="whatislog.q")
    archive, _ = outputs(data_home)
    before = archive.read_bytes()
    # parse_url_tuple is Hive's UDTF; Spark has none (and the Spark engine does not emulate it).
    script = (
        "INSERT OVERWRITE TABLE archiveLog\n"
        "SELECT dt, u.h, json, NULL, NULL, NULL, 1, NULL, NULL FROM fluentLog\n"
        "LATERAL VIEW parse_url_tuple(tag, 'HOST') u AS h"
    )
    with pytest.raises(HiveError) as info:
        spark_hive.run_script(script, source="bad.q")
    text = str(info.value)
    assert text.startswith("bad.q:1:1: statement 1: Invalid function 'parse_url_tuple' on the spark engine")
    assert "Traceback" not in text and "\tat org.apache" not in text
    assert archive.read_bytes() == before == want_archive
    assert sorted(p.name for p in archive.parent.iterdir()) == ["000000_0"]


def test_master_down_is_a_clear_error_before_any_jvm(data_home, metastore, spark_options):
    import dataclasses

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = dataclasses.replace(spark_options, master=f"spark://127.0.0.1:{port}")
    registry = _registry(data_home, metastore, options)
    engine = registry.create("spark")
    with pytest.raises(HiveError) as info:
        engine.run(ScriptRequest(text="SELECT 1", source="x.q", work_dir=data_home / "w", log=ListLog()))
    assert f"Spark master spark://127.0.0.1:{port} is not reachable" in str(info.value)


def test_master_that_refuses_fails_the_cli_run_with_a_clear_error(tmp_path):
    """A port that accepts and hangs up (not a Spark master): no executor ever comes, so the
    run fails after [spark] executor_timeout instead of waiting forever. Its own process: one
    SparkContext per JVM."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    stop = threading.Event()

    def refuse() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    home = tmp_path / "home"
    env = {
        "TAILRACE_HOME": str(home),
        "TAILRACE_SPARK__EXECUTOR_TIMEOUT": "8",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "PATH": "/usr/bin:/bin",
        "TZ": "UTC",
    }
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tailrace",
                "hive",
                "--engine",
                "spark",
                "--master",
                f"spark://127.0.0.1:{port}",
                "-e",
                "SELECT 1",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop.set()
        thread.join()
        server.close()
    assert proc.returncode != 0
    # Spark gives up on a master that hangs up before our executor wait does; either way the
    # message names the master and says it did not serve us, in one line.
    assert (
        f"cannot start a Spark session on spark://127.0.0.1:{port} (the master did not accept" in proc.stderr
        or f"Spark master spark://127.0.0.1:{port} gave no executor within 8 s" in proc.stderr
    ), proc.stderr
    assert "Traceback" not in proc.stderr and "\tat org.apache" not in proc.stderr


def test_cli_runs_the_seed_on_spark_and_writes_what_hive_writes(tmp_path):
    """`tailrace hive --engine spark --master local[1]` in its own process (the CLI stops its
    session when it ends)."""
    home = tmp_path / "home"
    ordered = place_input(home, fluentd_input(seed=5))
    env = {
        "TAILRACE_HOME": str(home),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "PATH": "/usr/bin:/bin",
        "TZ": "UTC",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tailrace",
            "hive",
            "--engine",
            "spark",
            "--master",
            "local[1]",
            "-f",
            str(SEED),
            "-d",
            f"DATE={DATE}",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    want_archive, want_stats, _, _ = seed_outputs(ordered, DATE)
    archive, stats = outputs(home)
    assert (archive.read_bytes(), stats.read_bytes()) == (want_archive, want_stats)
    rows = want_archive.count(b"\n")
    assert "spark: session started on local[1]" in proc.stderr
    assert f"OK  INSERT OVERWRITE archiveLog: {rows:,} rows" in proc.stderr
