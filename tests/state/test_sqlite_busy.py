"""SQLite takes one writer at a time: a command waits for the writer ahead of it, and when that
writer holds the lock past the busy timeout the command ends with a clear message (exit 3, no
traceback), on the CLI and on the API (503, which clients retry)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from tailrace.cli.main import run
from tailrace.services import build_services
from tailrace.state import open_store
from tailrace.state.records import StoreBusy


@pytest.fixture
def db(home):
    path = home / "tailrace.db"
    open_store(f"sqlite:///{path}").close()  # create the schema
    return path


def _hold_write_lock(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_a_write_waits_for_the_writer_ahead(db, capsys):
    holder = _hold_write_lock(db)
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(run(["keys", "create", "--owner", "w"], build_services)))
    t.start()
    t.join(0.5)  # the command is blocked behind the lock meanwhile
    assert t.is_alive() and not done
    holder.execute("COMMIT")
    t.join(60)
    assert done == [0]
    assert "AccessKeyId" in capsys.readouterr().out


def test_a_lock_held_past_the_timeout_ends_with_a_clear_message(db, monkeypatch, capsys):
    monkeypatch.setattr("tailrace.state.engine.BUSY_TIMEOUT_MS", 300)
    holder = _hold_write_lock(db)
    try:
        code = run(["keys", "create", "--owner", "w"], build_services)
    finally:
        holder.execute("ROLLBACK")
    err = capsys.readouterr().err
    assert code == 3
    assert "stayed locked by another process" in err and "PostgreSQL" in err
    assert "Traceback" not in err


def test_store_busy_is_a_503_on_the_api():
    from tailrace.api.errors import to_aws_error

    err = to_aws_error(StoreBusy("busy"))
    assert err.status == 503 and err.code == "ServiceUnavailableException"
