"""Secrets at rest: the home is the service user's alone, key secrets are encrypted in the
database with a key kept in a separate file, and no printed URL carries a password."""

from __future__ import annotations

import os
import sqlite3
import stat
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tailrace.api.keys import KeyStore, new_secret
from tailrace.clock import SystemClock
from tailrace.config import load_settings, mask_url
from tailrace.errors import ConfigError
from tailrace.state import open_store
from tailrace.state.secretbox import SecretBox
from tailrace.storage.private import secure_home

REPO = Path(__file__).resolve().parents[2]


def _modes(home: Path) -> dict[str, int]:
    out = {}
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            p = Path(root) / name
            out[str(p.relative_to(home))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_keys_are_encrypted_in_the_database_and_readable_with_the_key(tmp_path):
    db = tmp_path / "t.db"
    store = open_store(f"sqlite:///{db}")
    box = SecretBox.from_file(tmp_path / "keydir" / "secret.key")
    keys = KeyStore(store, SystemClock(), cache_seconds=0, box=box)
    key = keys.create("alice")
    store.close()
    raw = sqlite3.connect(db).execute("SELECT secret_access_key FROM tr_access_keys").fetchall()
    assert raw and all(key.secret_access_key not in row[0] for row in raw)
    assert all(row[0].startswith("fernet:") for row in raw)
    assert stat.S_IMODE((tmp_path / "keydir" / "secret.key").stat().st_mode) == 0o600
    store = open_store(f"sqlite:///{db}")
    again = KeyStore(
        store, SystemClock(), cache_seconds=0, box=SecretBox.from_file(tmp_path / "keydir" / "secret.key")
    )
    assert again.secret_for(key.access_key_id) == key.secret_access_key
    other = KeyStore(store, SystemClock(), cache_seconds=0, box=SecretBox.from_file(tmp_path / "other.key"))
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        other.secret_for(key.access_key_id)
    store.close()


def test_plaintext_keys_from_before_are_migrated(tmp_path):
    db = tmp_path / "t.db"
    store = open_store(f"sqlite:///{db}")
    old = KeyStore(store, SystemClock(), cache_seconds=0).create("bob")  # no box: as stored before
    box = SecretBox.from_file(tmp_path / "secret.key")
    keys = KeyStore(store, SystemClock(), cache_seconds=0, box=box)
    assert keys.secret_for(old.access_key_id) == old.secret_access_key  # readable before migration
    assert keys.encrypt_stored() == 1
    assert keys.encrypt_stored() == 0
    assert keys.secret_for(old.access_key_id) == old.secret_access_key
    store.close()
    raw = sqlite3.connect(db).execute("SELECT secret_access_key FROM tr_access_keys").fetchone()[0]
    assert old.secret_access_key not in raw


def test_existing_home_is_made_private(tmp_path):
    home = tmp_path / "home"
    (home / "s3" / "bucket").mkdir(parents=True)
    (home / "tailrace.db").write_text("x")
    (home / "s3" / "bucket" / "obj").write_text("y")
    for p in (home, home / "s3", home / "s3" / "bucket"):
        os.chmod(p, 0o755)
    os.chmod(home / "tailrace.db", 0o644)
    os.chmod(home / "s3" / "bucket" / "obj", 0o666)
    (home / "logs").mkdir()
    (home / "logs" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(home / "logs" / "run.sh", 0o755)
    os.chmod(home / "logs", 0o755)
    (home / "notes.txt").write_text("not tailrace's")
    os.chmod(home / "notes.txt", 0o644)
    assert secure_home(home) == 7
    modes = _modes(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert modes["s3"] == modes["s3/bucket"] == modes["logs"] == 0o700
    assert modes["tailrace.db"] == modes["s3/bucket/obj"] == 0o600
    assert modes["logs/run.sh"] == 0o700  # an executable stays one, for its owner
    assert modes["notes.txt"] == 0o644  # not tailrace's: left alone (the home's 0700 covers it)
    assert secure_home(home) == 0


def test_a_command_leaves_nothing_readable_by_others(tmp_path):
    """Commands on a fresh home (hive, then keys create): database, key file, all 0600/0700."""
    home = tmp_path / "home"
    env = {**os.environ, "TAILRACE_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    env.pop("TAILRACE_DATABASE_URL", None)
    env.pop("TAILRACE_SECRET_KEY_FILE", None)
    # `tailrace hive` makes the database (keys never create one: they belong to a server's).
    for command in (["hive", "-e", "SELECT 1"], ["keys", "create", "--owner", "alice"]):
        subprocess.run(
            [sys.executable, "-m", "tailrace", *command],
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(0o022),  # a usual login umask: the service must not rely on it
        )
    modes = _modes(home)
    assert "tailrace.db" in modes and "secret.key" in modes
    loose = {name: oct(m) for name, m in modes.items() if m & 0o077}
    assert not loose
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_printed_urls_hide_the_password():
    assert mask_url("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:****@db:5432/x"
    assert mask_url("postgresql+psycopg://bob:p%40ss@db/x?sslmode=require") == (
        "postgresql+psycopg://bob:****@db/x?sslmode=require"
    )
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    settings = load_settings(environ={"TAILRACE_DATABASE_URL": "postgresql://u:hunter2@h/db"})
    assert "hunter2" not in str(settings.as_dict())


def test_tailrace_config_does_not_print_the_database_password(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TAILRACE_HOME": str(tmp_path / "h")}
    env["TAILRACE_DATABASE_URL"] = "postgresql://svc:hunter2@127.0.0.1:5432/test"
    for output in ("text", "json"):
        done = subprocess.run(
            [sys.executable, "-m", "tailrace", "config", "--output", output],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "hunter2" not in done.stdout + done.stderr
        assert "svc:****@" in done.stdout


def test_a_users_home_directory_given_as_home_keeps_its_mode(tmp_path, monkeypatch):
    user_home = tmp_path / "alice"
    user_home.mkdir()
    os.chmod(user_home, 0o755)
    (user_home / "public.html").write_text("hi")
    os.chmod(user_home / "public.html", 0o644)
    (user_home / "tailrace.db").write_text("x")
    os.chmod(user_home / "tailrace.db", 0o644)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: user_home))
    assert secure_home(user_home) == 1
    assert stat.S_IMODE(user_home.stat().st_mode) == 0o755
    assert stat.S_IMODE((user_home / "public.html").stat().st_mode) == 0o644
    assert stat.S_IMODE((user_home / "tailrace.db").stat().st_mode) == 0o600


def test_new_secrets_are_safe_on_a_command_line() -> None:
    # A secret that began with '-' was taken by argparse for an option (one key in 64 did).
    drawn = [new_secret() for _ in range(2000)]
    assert all(
        len(s) == 40 and s[0] != "-" and set(s) <= set(string.ascii_letters + string.digits + "+/")
        for s in drawn
    )
    assert len(set(drawn)) == len(drawn)
