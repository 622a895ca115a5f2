"""A SQLite database of an owner's definition on the service reaches its own file only: ATTACH
and VACUUM INTO (which open or create any file as the server's user) are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tailrace.runtime.activities.databases import Database, _open, explain


def sqlite_db(path: str, *, sandboxed: bool) -> Database:
    return Database("sqlite", "Db", "connectionString", f"sqlite:{path}", path=path, sandboxed=sandboxed)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "metadata.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE access_keys (secret TEXT)")
    conn.execute("INSERT INTO access_keys VALUES ('s3cr3t')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("target", ["", ":memory:"])
@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH '{victim}' AS m",
        "ATTACH DATABASE '{victim}' AS m",
        "VACUUM INTO '{written}'",
        "PRAGMA temp_store_directory = '{tmp}'",
        "PRAGMA main.TEMP_STORE_DIRECTORY('{tmp}')",
    ],
)
def test_a_sandboxed_sqlite_database_opens_no_other_file(
    tmp_path: Path, victim: Path, target: str, statement: str
) -> None:
    written = tmp_path / "written.db"
    db = sqlite_db(target, sandboxed=True)
    conn = _open(db, 5)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        conn.executescript(statement.format(victim=victim, written=written, tmp=tmp_path))
    assert "ATTACH, VACUUM INTO, the directory pragmas and extensions are refused" in explain(
        db, caught.value
    )
    assert not written.exists()
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT secret FROM m.access_keys")


def test_a_sandboxed_sqlite_database_still_runs_sql_on_its_own_file(tmp_path: Path) -> None:
    conn = _open(sqlite_db(str(tmp_path / "own.db"), sandboxed=True), 5)
    conn.executescript("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x');")
    assert conn.execute("SELECT v FROM t").fetchall() == [("x",)]


def test_single_user_runs_keep_attach(tmp_path: Path, victim: Path) -> None:
    conn = _open(sqlite_db(":memory:", sandboxed=False), 5)
    conn.execute(f"ATTACH '{victim}' AS m")
    assert conn.execute("SELECT secret FROM m.access_keys").fetchall() == [("s3cr3t",)]
