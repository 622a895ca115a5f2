"""Hive features a script's author could turn against the server or another owner."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tailrace.engines.hive import HiveEngine, HiveError
from tailrace.engines.hive.udfs import get_json_object, printf
from tailrace.engines.metastore import SqlMetastore
from tailrace.storage import Storage


def test_python_functions_bound_their_output(hive) -> None:
    rows = (
        hive.run_script("SELECT printf('%999999999d', 1), format_number(1.5, 999999999), printf('%5d|', 42)")
        .statements[0]
        .select_rows
    )
    assert rows == [(None, None, "   42|")]
    with pytest.raises(ValueError):
        printf("%20000s", ["x"])


def test_deeply_nested_json_is_null_not_a_crash(hive) -> None:
    deep = "[" * 200_000
    assert get_json_object("[" * 100 + "1" + "]" * 100, "$[0]") is not None
    rows = hive.run_script(f"SELECT get_json_object('{deep}', '$[0]')").statements[0].select_rows
    assert rows == [(None,)]


def test_a_view_is_read_in_its_readers_metastore(tmp_path: Path) -> None:
    """Bob cannot see Alice's view, and a view names tables of whoever reads it."""
    engines = {}
    for owner in ("alice", "bob"):
        home = tmp_path / owner
        home.mkdir()
        ms = SqlMetastore(sa.create_engine(f"sqlite:///{home / 'm.db'}"))
        engines[owner] = HiveEngine(Storage(home=home), ms, work_dir=home / "w", threads=1)
    alice, bob = engines["alice"], engines["bob"]
    try:
        alice.run_script("CREATE TABLE secrets (s string); CREATE VIEW peek AS SELECT s FROM secrets")
        with pytest.raises(HiveError, match="Table not found 'peek'"):
            bob.run_script("SELECT * FROM peek")
        with pytest.raises(HiveError, match="Table not found 'secrets'"):
            bob.run_script("CREATE VIEW peek AS SELECT s FROM secrets")
    finally:
        alice.close()
        bob.close()


def test_load_data_cannot_read_server_files(hive) -> None:
    hive.run_script("CREATE TABLE t (line string)")
    with pytest.raises(HiveError, match="not supported"):
        hive.run_script("LOAD DATA LOCAL INPATH '/etc/passwd' INTO TABLE t")
    assert hive.run_script("SELECT count(*) FROM t").statements[0].select_rows == [("0",)]


# The sandbox refuses file-reading functions by name; any other function in FROM is refused by
# the Hive translation: either message is a refusal.
REFUSED_IN_FROM = "is not available: scripts read data through tables only|a function in FROM is not a table"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM read_text('/etc/hostname')", REFUSED_IN_FROM),
        ("SELECT * FROM read_csv('/etc/hostname')", REFUSED_IN_FROM),
        ("SELECT * FROM duckdb_settings()", REFUSED_IN_FROM),
        ("SELECT current_setting('threads')", "Invalid function 'current_setting'|is not available"),
        ("SELECT x FROM (SELECT 1 AS x) t JOIN read_text('/etc/hostname') f ON (true)", REFUSED_IN_FROM),
    ],
)
def test_duckdb_functions_hive_does_not_have_are_refused(hive, sql, message) -> None:
    """Only Hive's functions reach DuckDB: its table functions would read the server's files."""
    with pytest.raises(HiveError, match=message):
        hive.run_script(sql)


def test_every_python_function_is_registered_by_name() -> None:
    from tailrace.engines.hive import udfs

    assert set(udfs._FUNCTION_NAMES) == set(udfs._functions())
