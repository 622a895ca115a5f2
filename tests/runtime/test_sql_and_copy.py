"""SqlActivity and CopyActivity on JdbcDatabase connections (SQLite file and the real PostgreSQL),
HiveCopyActivity, and Hive's pre/post task scripts — through `tailrace run`."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from tailrace.cli.main import run as cli
from tailrace.services import build_services

PG = "jdbc:postgresql://127.0.0.1:5432/test"


def run_definition(tmp_path: Path, objects: list[dict]) -> int:
    head = [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
        {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
    ]
    path = tmp_path / f"p-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"objects": head + objects}))
    return cli(["run", str(path), "--until", "2012-12-25T00:00:00", "-q"], build_services)


def db(url: str, **extra: str) -> dict:
    return {
        "id": "Db",
        "type": "JdbcDatabase",
        "connectionString": url,
        "jdbcDriverClass": "x",
        "username": "postgres",
        "*password": "unused",
        **extra,
    }


def test_sql_activity_on_sqlite_with_script_arguments(home, tmp_path, capsys):
    dbfile = tmp_path / "x.db"
    sqlite3.connect(dbfile).executescript("CREATE TABLE runs (day TEXT, note TEXT)")
    code = run_definition(
        tmp_path,
        [
            db(f"jdbc:sqlite:{dbfile}"),
            {
                "id": "Ins",
                "type": "SqlActivity",
                "database": {"ref": "Db"},
                "script": "INSERT INTO runs VALUES (?, ?)",
                "scriptArgument": ["#{format(@scheduledStartTime,'YYYY-MM-dd')}", "from #{@pipelineId}"],
            },
        ],
    )
    assert code == 0, capsys.readouterr()
    rows = sqlite3.connect(dbfile).execute("SELECT day, note FROM runs").fetchall()
    assert rows[0][0] == "2012-12-24" and rows[0][1].startswith("from df-LOCAL")


def test_sql_activity_error_names_the_object(home, tmp_path, capsys):
    code = run_definition(
        tmp_path,
        [
            db(f"jdbc:sqlite:{tmp_path / 'y.db'}"),
            {"id": "Bad", "type": "SqlActivity", "database": {"ref": "Db"}, "script": "SELEC 1"},
        ],
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "@Bad_2012-12-24T00:00:00  FAILED" in out and "object 'Bad', field 'script'" in out


@pytest.mark.postgres
def test_copy_between_postgresql_and_the_store(home, tmp_path, capsys):
    table = f"tr_copy_{uuid.uuid4().hex[:8]}"
    src = home / "s3" / "b" / "in"
    src.mkdir(parents=True)
    (src / "part-0").write_text("1\talice\n2\t\\N\n3\tbob\\\tby\n")
    code = run_definition(
        tmp_path,
        [
            db(PG),
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in/", "dataFormat": {"ref": "F"}},
            {
                "id": "T",
                "type": "SqlDataNode",
                "database": {"ref": "Db"},
                "table": table,
                "createTableSql": f"CREATE TABLE {table} (id int, name text)",
            },
            {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/out/", "dataFormat": {"ref": "F"}},
            {"id": "F", "type": "TSV", "column": ["id INT", "name STRING"]},
            {"id": "Load", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
            {
                "id": "T2",
                "type": "SqlDataNode",
                "database": {"ref": "Db"},
                "table": table,
                "selectQuery": f"SELECT id, name FROM {table} ORDER BY id",
            },
            {
                "id": "Dump",
                "type": "CopyActivity",
                "input": {"ref": "T2"},
                "output": {"ref": "Out"},
                "dependsOn": {"ref": "Load"},
            },
            {
                "id": "Drop",
                "type": "SqlActivity",
                "database": {"ref": "Db"},
                "script": f"DROP TABLE {table}",
                "dependsOn": {"ref": "Dump"},
            },
        ],
    )
    assert code == 0, capsys.readouterr()
    assert (home / "s3" / "b" / "out" / "000000_0").read_text() == "1\talice\n2\t\\N\n3\tbob\\\tby\n"


def test_hive_copy_activity_filters_and_task_scripts_run(home, tmp_path, capsys):
    src = home / "s3" / "b" / "logs"
    src.mkdir(parents=True)
    (src / "a.tsv").write_text("/a\t200\n/b\t404\n/c\t200\n")
    (home / "s3" / "b" / "pre.sh").write_text('echo "pre $1" > "$TAILRACE_MARK"\n')
    import os

    os.environ["TAILRACE_MARK"] = str(tmp_path / "mark")
    try:
        code = run_definition(
            tmp_path,
            [
                {"id": "F", "type": "TSV", "column": ["path STRING", "code STRING"]},
                {
                    "id": "In",
                    "type": "S3DataNode",
                    "directoryPath": "s3://b/logs/",
                    "dataFormat": {"ref": "F"},
                },
                {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/ok/"},
                {
                    "id": "Pre",
                    "type": "ShellScriptConfig",
                    "scriptUri": "s3://b/pre.sh",
                    "scriptArgument": ["#{format(@scheduledStartTime,'YYYY-MM-dd')}"],
                },
                {
                    "id": "Copy",
                    "type": "HiveCopyActivity",
                    "input": {"ref": "In"},
                    "output": {"ref": "Out"},
                    "filterSql": "code = '200'",
                    "preActivityTaskConfig": {"ref": "Pre"},
                },
            ],
        )
    finally:
        del os.environ["TAILRACE_MARK"]
    assert code == 0, capsys.readouterr()
    assert (home / "s3" / "b" / "ok" / "000000_0").read_text() == '"/a"\t"200"\n"/c"\t"200"\n'
    assert (tmp_path / "mark").read_text() == "pre 2012-12-24\n"
