"""An owner's Hive script: its own metastore namespace, and DuckDB that reads only through tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailrace.engines.hive import HiveEngine, HiveError
from tailrace.engines.metastore import MemoryMetastore, OwnerMetastore, TableSpec
from tailrace.storage import Storage


def test_owners_do_not_see_each_others_tables() -> None:
    shared = MemoryMetastore()
    alice, bob, default = (OwnerMetastore(shared, o) for o in ("alice", "bob", "default"))
    alice.create_table(TableSpec(name="hits", columns=[("a", "string")], location="s3://a/hits/"))
    default.create_table(TableSpec(name="legacy", columns=[("a", "string")], location="s3://d/l/"))
    assert alice.get_table("default", "hits") is not None
    assert bob.get_table("default", "hits") is None and bob.list_tables() == []
    assert [t.name for t in default.list_tables()] == ["legacy"]  # the single-user layout, unprefixed
    assert shared.get_table("default", "legacy") is not None
    assert [t.qualified_name for t in alice.list_tables()] == ["default.hits"]
    assert not bob.drop_table("default", "hits") and alice.get_table("default", "hits") is not None


@pytest.fixture
def engines(tmp_path: Path):
    storage = Storage(home=tmp_path / "home")
    shared = MemoryMetastore()
    made: list[HiveEngine] = []

    def engine(owner: str) -> HiveEngine:
        e = HiveEngine(
            storage.for_owner(owner),
            OwnerMetastore(shared, owner),
            work_dir=tmp_path / f"w-{owner}-{len(made)}",
        )
        made.append(e)
        return e

    yield engine, tmp_path
    for e in made:
        e.close()


ATTACKS = {
    "SELECT read_text('{secret}')": "read_text() is not available",
    "SELECT * FROM read_csv_auto('{secret}')": "is not available",
    "SELECT * FROM read_blob('/etc/hostname')": "read_blob() is not available",
    "SELECT getenv('HOME')": "getenv() is not available",
    "SELECT * FROM '/etc/passwd'": "is not a table name",
    "ATTACH '{secret}' AS x": "ATTACH statements are not supported",
    "COPY (SELECT 1) TO '/tmp/x.csv'": "COPY statements are not supported",
    "PRAGMA database_list": "PRAGMA statements are not supported",
    "INSTALL httpfs": "INSTALL statements are not supported",
    "LOAD httpfs": "LOAD statements are not supported",
    "CALL pragma_version()": "CALL statements are not supported",
    "CREATE SECRET s (TYPE s3, KEY_ID 'x')": "SECRET statements are not supported",
    "CREATE EXTERNAL TABLE t (l STRING) LOCATION 'file:///etc/'": None,
}


@pytest.mark.parametrize("script", sorted(ATTACKS))
def test_file_and_engine_statements_are_refused(engines, script: str) -> None:
    engine, tmp = engines
    secret = tmp / "secret.txt"
    secret.write_text("s3cr3t")
    e = engine("mallory")
    text = script.format(secret=secret)
    if ATTACKS[script] is None:  # the DDL is accepted, reading through it is not
        e.run_script(text)
        text = "SELECT * FROM t"
    with pytest.raises(HiveError) as info:
        e.run_script(text)
    assert (ATTACKS[script] or "local paths are not allowed") in str(info.value)


def test_duckdb_itself_is_locked(engines) -> None:
    engine, _ = engines
    e = engine("mallory")
    with pytest.raises(Exception, match="configuration has been locked"):
        e.con.execute("SET enable_external_access = true")
    with pytest.raises(Exception, match="disabled by configuration"):
        e.con.execute("SELECT * FROM read_text('/etc/hostname')")


def test_an_owner_reads_and_writes_its_own_tables(engines) -> None:
    engine, _ = engines
    alice = engine("alice")
    alice.run_script(
        "CREATE EXTERNAL TABLE t (v STRING) LOCATION 's3://alice-b/t/'; INSERT OVERWRITE TABLE t SELECT 'row'"
    )
    assert engine("alice").run_script("SELECT * FROM t").statements[-1].select_rows == [("row",)]
    with pytest.raises(HiveError, match="Table not found"):
        engine("bob").run_script("INSERT OVERWRITE TABLE t SELECT 'pwned'")
    with pytest.raises(HiveError, match="belongs to another owner"):
        engine("bob").run_script(
            "CREATE EXTERNAL TABLE s (v STRING) LOCATION 's3://alice-b/t/'; SELECT * FROM s"
        )


def test_owners_differing_in_case_have_separate_namespaces() -> None:
    shared = MemoryMetastore()
    OwnerMetastore(shared, "Alice").create_table(
        TableSpec(name="t", columns=[("a", "string")], location="s3://x/")
    )
    assert OwnerMetastore(shared, "alice").get_table("default", "t") is None
    assert OwnerMetastore(shared, "Alice").get_table("default", "t") is not None


def test_owner_warehouses_are_apart_whatever_the_name(tmp_path: Path) -> None:
    storage = Storage(home=tmp_path)
    dirs = {storage.for_owner(o).warehouse for o in ("..", ".", "Alice", "alice", "default")}
    assert len(dirs) == 5
    for o in ("..", ".", "Alice"):
        assert storage.for_owner(o).warehouse.is_relative_to(tmp_path / "warehouse-owners")


def test_duckdb_reads_only_the_owners_buckets(engines) -> None:
    engine, tmp = engines
    engine("alice").run_script(
        "CREATE EXTERNAL TABLE t (v STRING) LOCATION 's3://alice-b/t/'; INSERT OVERWRITE TABLE t SELECT 'row'"
    )
    alice_file = next(p for p in (tmp / "home/s3/alice-b/t").rglob("*") if p.is_file())
    bob = engine("bob")
    with pytest.raises(Exception, match="disabled by configuration"):
        bob.con.execute(f"SELECT * FROM read_text('{alice_file}')")
    # A bucket bob first uses in the script is still readable in the same script (copied first).
    result = bob.run_script(
        "CREATE EXTERNAL TABLE n (v STRING) LOCATION 's3://bob-new/n/'; INSERT OVERWRITE TABLE n SELECT 'b'; "
        "SELECT * FROM n"
    )
    assert result.statements[-1].select_rows == [("b",)]
    # Alice, who owns her bucket since before the script, reads it in place.
    alice = engine("alice")
    assert alice.files.readable is not None and alice.files._direct(alice_file)
    assert alice.run_script("SELECT * FROM t").statements[-1].select_rows == [("row",)]
