"""RedshiftCopyActivity onto the real PostgreSQL: each insertMode as the Developer Guide defines
it, createTableSql, transformSql over `staging`, the unload direction, and failures that leave
the table as it was."""

from __future__ import annotations

import pytest
from dbhelpers import PG_JDBC, result, unique

CLUSTER = f'[databases.redshift_clusters]\nmy-cluster = "{PG_JDBC}"\n'
EXISTING = [(1, "old1"), (2, "old2")]
INPUT = "2\tnew2\n3\tnew3\n"


def objects(table: str, mode: str, *, node: dict | None = None, **activity: str) -> list[dict]:
    return [
        {
            "id": "Cluster",
            "type": "RedshiftDatabase",
            "clusterId": "my-cluster",
            "username": "postgres",
            "*password": "unused-by-trust",
        },
        {"id": "Tsv", "type": "TSV"},
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://rs/in/", "dataFormat": {"ref": "Tsv"}},
        {
            "id": "Dest",
            "type": "RedshiftDataNode",
            "database": {"ref": "Cluster"},
            "schemaName": "public",
            "tableName": table,
            **(node or {}),
        },
        {
            "id": "Load",
            "type": "RedshiftCopyActivity",
            "input": {"ref": "In"},
            "output": {"ref": "Dest"},
            "insertMode": mode,
            **activity,
        },
    ]


def rows(pg, table: str) -> list[tuple]:
    return pg.execute(f"SELECT id, name FROM {table} ORDER BY id, name").fetchall()


@pytest.fixture
def staged(home):
    (home / "s3" / "rs" / "in").mkdir(parents=True)
    (home / "s3" / "rs" / "in" / "part-0").write_text(INPUT)
    return home


@pytest.mark.parametrize(
    ("mode", "primary_key", "expected"),
    [
        # Rows whose key is already there stay as they are; new keys are added.
        ("KEEP_EXISTING", True, [(1, "old1"), (2, "old2"), (3, "new3")]),
        # Rows whose key is already there are replaced; new keys are added.
        ("OVERWRITE_EXISTING", True, [(1, "old1"), (2, "new2"), (3, "new3")]),
        # Every row deleted first.
        ("TRUNCATE", True, [(2, "new2"), (3, "new3")]),
        # Every row added, no key needed: duplicates are possible.
        ("APPEND", False, [(1, "old1"), (2, "new2"), (2, "old2"), (3, "new3")]),
    ],
)
def test_each_insert_mode(staged, pg, run_objects, mode, primary_key, expected):
    table = unique("tr_rs")
    pg.execute(f"CREATE TABLE {table} (id int{' primary key' if primary_key else ''}, name text)")
    pg.execute(f"INSERT INTO {table} VALUES (1, 'old1'), (2, 'old2')")
    try:
        report = run_objects(objects(table, mode), config=CLUSTER)
        load = result(report, "Load")
        assert load.status == "FINISHED", load.error
        assert rows(pg, table) == expected
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_primary_keys_of_the_node_are_the_merge_key(staged, pg, run_objects):
    table = unique("tr_rs")
    pg.execute(f"CREATE TABLE {table} (id int, name text)")  # no primary key in the table
    pg.execute(f"INSERT INTO {table} VALUES (1, 'old1'), (2, 'old2')")
    try:
        report = run_objects(
            objects(table, "OVERWRITE_EXISTING", node={"primaryKeys": ["id"]}), config=CLUSTER
        )
        assert result(report, "Load").status == "FINISHED"
        assert rows(pg, table) == [(1, "old1"), (2, "new2"), (3, "new3")]
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_keep_existing_without_any_key_is_refused_naming_primary_keys(staged, pg, run_objects):
    table = unique("tr_rs")
    pg.execute(f"CREATE TABLE {table} (id int, name text)")
    try:
        load = result(run_objects(objects(table, "KEEP_EXISTING"), config=CLUSTER), "Load")
        assert load.status == "FAILED"
        assert "object 'Dest', field 'primaryKeys'" in load.error and "KEEP_EXISTING" in load.error
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_create_table_and_transform_sql_over_staging(home, pg, run_objects):
    (home / "s3" / "rs" / "in").mkdir(parents=True)
    (home / "s3" / "rs" / "in" / "part-0").write_text("a,3\nb,4\n")
    table = unique("tr_rs")
    defn = objects(
        table,
        "APPEND",
        node={"createTableSql": f"CREATE TABLE {table} (id int primary key, name text)"},
        transformSql="SELECT n * 10, upper(k) FROM staging",
    )
    defn[1] = {"id": "Tsv", "type": "CSV", "column": ["k STRING", "n INT"]}
    try:
        load = result(run_objects(defn, config=CLUSTER), "Load")
        assert load.status == "FINISHED", load.error
        assert rows(pg, table) == [(30, "A"), (40, "B")]
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_a_bad_record_leaves_the_table_as_it_was(home, pg, run_objects):
    (home / "s3" / "rs" / "in").mkdir(parents=True)
    (home / "s3" / "rs" / "in" / "part-0").write_text("2\tnew2\nnot-a-number\tx\n")
    table = unique("tr_rs")
    pg.execute(f"CREATE TABLE {table} (id int primary key, name text)")
    pg.execute(f"INSERT INTO {table} VALUES (1, 'old1'), (2, 'old2')")
    try:
        load = result(run_objects(objects(table, "TRUNCATE", maximumRetries="1"), config=CLUSTER), "Load")
        assert load.status == "FAILED" and load.attempts == 2
        assert "object 'Load', field 'input'" in load.error and "not-a-number" in load.error
        assert rows(pg, table) == EXISTING  # TRUNCATE did not happen either
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_unmapped_cluster_is_refused_naming_cluster_id(staged, run_objects):
    load = result(run_objects(objects("t", "APPEND")), "Load")
    assert load.status == "FAILED"
    assert (
        "object 'Cluster', field 'clusterId'" in load.error and "[databases.redshift_clusters]" in load.error
    )


def test_unload_a_table_to_the_store(home, pg, run_objects):
    table = unique("tr_rs")
    pg.execute(f"CREATE TABLE {table} (id int, name text)")
    pg.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, NULL)")
    defn = objects(table, "TRUNCATE")
    defn[2] = {
        "id": "Out",
        "type": "S3DataNode",
        "directoryPath": "s3://rs/unload/",
        "dataFormat": {"ref": "Tsv"},
    }
    defn[4] = {
        "id": "Load",
        "type": "RedshiftCopyActivity",
        "input": {"ref": "Dest"},
        "output": {"ref": "Out"},
        "insertMode": "TRUNCATE",
    }
    try:
        load = result(run_objects(defn, config=CLUSTER), "Load")
        assert load.status == "FINISHED", load.error
        assert sorted((home / "s3" / "rs" / "unload" / "000000_0").read_text().splitlines()) == [
            "1\ta",
            "2\t\\N",
        ]
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_a_broken_transform_sql_is_named(staged, pg, run_objects):
    table = unique("tr_rs")
    pg.execute(f"CREATE TABLE {table} (id int primary key, name text)")
    try:
        load = result(
            run_objects(objects(table, "APPEND", transformSql="SELECT nope FROM staging"), config=CLUSTER),
            "Load",
        )
        assert load.status == "FAILED"
        assert "object 'Load', field 'transformSql'" in load.error and "nope" in load.error
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")
