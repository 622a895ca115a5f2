"""Benchmark of the database activities on the local MariaDB and PostgreSQL: records per second of
CopyActivity (S3 TSV into a table, a table out to S3) and RedshiftCopyActivity (APPEND and
OVERWRITE_EXISTING through the `staging` table), each run as `tailrace run` runs it.

    .venv/bin/python bench/db_copy.py                 # 200,000 rows; updates bench/RESULTS.md
    .venv/bin/python bench/db_copy.py --rows 20000 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
PG = "jdbc:postgresql://127.0.0.1:5432/test"
MYSQL = "jdbc:mysql://127.0.0.1:3306/test"
HEAD = [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
    {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
    {"id": "Tsv", "type": "TSV"},
]


def db(oid: str, url: str, user: str) -> dict[str, Any]:
    return {
        "id": oid,
        "type": "JdbcDatabase",
        "connectionString": url,
        "jdbcDriverClass": "x",
        "username": user,
        "*password": "bench",
    }


def run(home: Path, objects: list[dict[str, Any]], config: str = "") -> float:
    from tailrace.clock import parse_dp
    from tailrace.config import load_settings
    from tailrace.definition import from_file_dict
    from tailrace.runtime.local import LocalRunner
    from tailrace.services import build_services

    cfg = home.parent / "tailrace.toml"
    cfg.write_text(config)
    services = build_services(load_settings(environ={"TAILRACE_HOME": str(home)}, config_file=cfg))
    runner = LocalRunner(
        storage=services.storage, home=home, engines=services.engines, databases=services.database_access
    )
    started = time.perf_counter()
    report = runner.run(from_file_dict({"objects": HEAD + objects}), until=parse_dp("2012-12-25T00:00:00"))
    took = time.perf_counter() - started
    if report.failed:
        raise SystemExit(f"failed: {[(r.instance.component_id, r.error) for r in report.results]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--no-write", action="store_true", help="print the figures; leave RESULTS.md alone")
    args = ap.parse_args()
    import psycopg
    import pymysql

    n = args.rows
    pg = psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True)
    my = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)
    suffix = uuid.uuid4().hex[:8]
    t_pg, t_my, t_rs = f"bench_pg_{suffix}", f"bench_my_{suffix}", f"bench_rs_{suffix}"
    figures: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "s3" / "b" / "in").mkdir(parents=True)
        with (home / "s3" / "b" / "in" / "part-0").open("w") as fh:
            for i in range(n):
                fh.write(f"{i}\thost-{i % 97}\t/path/{i % 1013}\t{200 + i % 5}\n")
        pg.execute(f"CREATE TABLE {t_pg} (id int, host text, path text, code int)")
        pg.execute(f"CREATE TABLE {t_rs} (id int primary key, host text, path text, code int)")
        my.cursor().execute(f"CREATE TABLE {t_my} (id INT, host VARCHAR(20), path VARCHAR(20), code INT)")
        my.cursor().execute("CREATE USER IF NOT EXISTS 'tr_bench'@'%' IDENTIFIED BY 'bench'")
        my.cursor().execute("GRANT ALL ON test.* TO 'tr_bench'@'%'")
        s3_in = {
            "id": "In",
            "type": "S3DataNode",
            "directoryPath": "s3://b/in/",
            "dataFormat": {"ref": "Tsv"},
        }
        cases: list[tuple[str, list[dict[str, Any]], str]] = [
            (
                "CopyActivity S3 TSV -> PostgreSQL table",
                [
                    db("Db", PG, "postgres"),
                    s3_in,
                    {"id": "T", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": t_pg},
                    {"id": "A", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
                ],
                "",
            ),
            (
                "CopyActivity S3 TSV -> MariaDB table",
                [
                    db("Db", MYSQL, "tr_bench"),
                    s3_in,
                    {"id": "T", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": t_my},
                    {"id": "A", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
                ],
                "",
            ),
            (
                "CopyActivity PostgreSQL table -> S3 TSV",
                [
                    db("Db", PG, "postgres"),
                    {"id": "T", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": t_pg},
                    {
                        "id": "Out",
                        "type": "S3DataNode",
                        "directoryPath": "s3://b/out/",
                        "dataFormat": {"ref": "Tsv"},
                    },
                    {"id": "A", "type": "CopyActivity", "input": {"ref": "T"}, "output": {"ref": "Out"}},
                ],
                "",
            ),
        ]
        rs = [
            {
                "id": "Db",
                "type": "RedshiftDatabase",
                "clusterId": "c",
                "username": "postgres",
                "*password": "x",
            },
            s3_in,
            {"id": "T", "type": "RedshiftDataNode", "database": {"ref": "Db"}, "tableName": t_rs},
        ]
        conf = f'[databases.redshift_clusters]\nc = "{PG}"\n'
        for mode, label in (("APPEND", "into an empty table"), ("OVERWRITE_EXISTING", "over the same rows")):
            act = {
                "id": "A",
                "type": "RedshiftCopyActivity",
                "input": {"ref": "In"},
                "output": {"ref": "T"},
                "insertMode": mode,
            }
            cases.append((f"RedshiftCopyActivity {mode} {label}", [*rs, act], conf))
        try:
            for k, (name, objects, config) in enumerate(cases):
                case_home = Path(tmp) / f"case{k}" / "home"
                (case_home / "s3" / "b" / "in").mkdir(parents=True)
                shutil.copyfile(home / "s3" / "b" / "in" / "part-0", case_home / "s3" / "b" / "in" / "part-0")
                took = run(case_home, objects, config)
                figures.append((name, took))
                print(f"{name}: {took:.2f} s, {n / took:,.0f} rows/s", flush=True)
        finally:
            pg.execute(f"DROP TABLE IF EXISTS {t_pg}, {t_rs}")
            my.cursor().execute(f"DROP TABLE IF EXISTS {t_my}")
    if args.no_write:
        return
    lines = [
        "## Databases: CopyActivity and RedshiftCopyActivity (bench/db_copy.py)",
        "",
        f"{n:,} rows of 4 columns, local PostgreSQL and MariaDB, {platform.machine()} with "
        f"{os.cpu_count()} cores shared with other work; each activity run as `tailrace run` runs it "
        "(wall time of the whole one-shot run, planning included).",
        "",
        "| activity | wall s | rows/s |",
        "|---|---|---|",
        *(f"| {name} | {took:.2f} | {n / took:,.0f} |" for name, took in figures),
        "",
        "CopyActivity into PostgreSQL without an insertQuery uses COPY; with INSERTs (before that change, same rows, same machine) it ran at 12,230 rows/s. Figures vary by tens of percent between runs on this shared machine.",
        "",
    ]
    write_section(REPO / "bench" / "RESULTS.md", lines)


def write_section(path: Path, lines: list[str]) -> None:
    text = path.read_text()
    head = lines[0]
    pattern = re.compile(rf"^{re.escape(head)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = "\n".join(lines) + "\n"
    text = pattern.sub(lambda m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


if __name__ == "__main__":
    main()
