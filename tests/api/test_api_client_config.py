"""Client commands find the server and key the way the AWS tools do: flags > TAILRACE_* variables
> a per-user profile (~/.tailrace/config and credentials, written by `tailrace configure`), from
any directory; and no client command creates a database as a side effect."""

from __future__ import annotations

import configparser
import io
import json
import stat

import pytest

from tailrace.cli.main import run
from tailrace.services import build_services


@pytest.fixture
def user(world, tmp_path, monkeypatch):
    """A user with an empty home directory, in a directory where `tailrace up` never ran."""
    home = tmp_path / "user-home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in (
        "TAILRACE_HOME",
        "TAILRACE_ENDPOINT",
        "TAILRACE_ACCESS_KEY_ID",
        "TAILRACE_SECRET_ACCESS_KEY",
        "TAILRACE_PROFILE",
        "TAILRACE_CONFIG_FILE",
        "TAILRACE_SHARED_CREDENTIALS_FILE",
        "TAILRACE_DATABASE_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(elsewhere)

    def tailrace(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nothing is asked
        code = run(list(argv), build_services)
        return code, out.getvalue(), err.getvalue()

    tailrace.home = home
    tailrace.cwd = elsewhere
    return tailrace


def _names(tailrace, *extra: str) -> set[str]:
    code, out, err = tailrace("list-pipelines", "--output", "json", *extra)
    assert code == 0, err
    return {p["name"] for p in json.loads(out)["pipelineIdList"]}


def test_configure_then_client_commands_work_from_any_directory(world, user):
    alice, bob = world.keys.create("alice"), world.keys.create("bob")
    url = world.server.url
    code, out, err = user(
        "configure",
        "--endpoint-url",
        url,
        "--access-key-id",
        alice.access_key_id,
        "--secret-access-key",
        alice.secret_access_key,
    )
    assert code == 0, err
    config, creds = user.home / ".tailrace" / "config", user.home / ".tailrace" / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600 and stat.S_IMODE(config.stat().st_mode) == 0o600
    ini = configparser.ConfigParser()
    ini.read(creds)
    assert ini["default"]["access_key_id"] == alice.access_key_id
    assert alice.secret_access_key not in out + err  # never echoed

    code, _, err = user("create-pipeline", "--name", "from-alice", "--unique-id", "a1")
    assert code == 0, err
    assert user("configure", "--profile", "bob", "--endpoint-url", url, "--access-key-id",
                bob.access_key_id, "--secret-access-key", bob.secret_access_key)[0] == 0  # fmt: skip
    assert user("create-pipeline", "--name", "from-bob", "--unique-id", "b1", "--profile", "bob")[0] == 0

    assert _names(user) == {"from-alice"}
    assert _names(user, "--profile", "bob") == {"from-bob"}  # owners stay apart
    user.cwd.joinpath("sub").mkdir()
    import os

    os.chdir(user.cwd / "sub")
    assert _names(user) == {"from-alice"}  # any directory
    assert not (user.cwd / ".tailrace").exists() and not (user.cwd / "sub" / ".tailrace").exists()


def test_precedence_flags_then_environment_then_profile(world, user, monkeypatch):
    alice, bob = world.keys.create("alice"), world.keys.create("bob")
    # The profile points at a port nothing listens on: the flag and the variable must win.
    dead = "http://127.0.0.1:9"
    assert user("configure", "--endpoint-url", dead, "--access-key-id", alice.access_key_id,
                "--secret-access-key", alice.secret_access_key)[0] == 0  # fmt: skip
    code, _, err = user("list-pipelines")
    assert code != 0 and "cannot reach tailrace at http://127.0.0.1:9" in err
    assert user("list-pipelines", "--endpoint-url", world.server.url)[0] == 0
    monkeypatch.setenv("TAILRACE_ENDPOINT", world.server.url)
    assert user("create-pipeline", "--name", "a", "--unique-id", "a")[0] == 0  # alice, from the profile
    monkeypatch.setenv("TAILRACE_ACCESS_KEY_ID", bob.access_key_id)
    monkeypatch.setenv("TAILRACE_SECRET_ACCESS_KEY", bob.secret_access_key)
    assert _names(user) == set()  # the variables (bob) beat the default profile (alice)
    monkeypatch.setenv("TAILRACE_PROFILE", "nope")
    code, _, err = user("list-pipelines")
    assert code != 0 and "profile 'nope'" in err and "tailrace configure --profile nope" in err


def test_keys_create_where_no_database_exists_says_so_and_creates_nothing(user):
    code, out, err = user("keys", "create")
    assert code != 0 and "no tailrace database" in err and "--database-url" in err
    assert "AccessKeyId" not in out
    assert list(user.cwd.iterdir()) == []  # no .tailrace, no state file


def test_configure_from_local_copies_what_tailrace_up_wrote(world, user):
    from tailrace.api.credentials import write_credentials_file

    key = world.keys.create("carol")
    up_home = user.cwd / "server-data"
    write_credentials_file(up_home, key, world.server.url)
    code, _, err = user("--home", str(up_home), "configure", "--from-local")
    assert code == 0, err
    code, out, _ = user("configure", "--list")
    assert key.access_key_id in out and key.secret_access_key not in out
    assert user("create-pipeline", "--name", "c", "--unique-id", "c")[0] == 0
