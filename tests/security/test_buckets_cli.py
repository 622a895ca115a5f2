"""`tailrace buckets`: create, grant, revoke and list, as a subprocess on a data directory, and
what the grants change for an owner's view of the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tailrace.state.engine import create_engine
from tailrace.storage import AccessDeniedError, Storage
from tailrace.storage.buckets import SqlBucketRegistry


def test_buckets_command_drives_what_owners_reach(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")} | {
        "TAILRACE_HOME": str(home)
    }

    def tailrace(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tailrace", "buckets", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )

    assert tailrace("create", "team-logs", "--owner", "alice").returncode == 0
    taken = tailrace("create", "team-logs", "--owner", "bob")
    assert taken.returncode != 0 and "already belongs to owner 'alice'" in taken.stderr
    bad = tailrace("grant", "..", "bob")
    assert bad.returncode != 0 and "bucket name '..' is not allowed" in bad.stderr

    storage = Storage(
        home=home, buckets=SqlBucketRegistry(create_engine(f"sqlite:///{home / 'tailrace.db'}"))
    )
    storage.for_owner("alice").write_bytes("s3://team-logs/day/part-0", b"rows")
    with pytest.raises(AccessDeniedError):
        storage.for_owner("bob").read_bytes("s3://team-logs/day/part-0")

    assert tailrace("grant", "team-logs", "bob").returncode == 0
    assert storage.for_owner("bob").read_bytes("s3://team-logs/day/part-0") == b"rows"
    listed = json.loads(tailrace("list", "--owner", "bob", "--output", "json").stdout)
    assert listed == {"Buckets": [{"Name": "team-logs", "Owner": "alice", "GrantedTo": ["bob"]}]}

    assert tailrace("revoke", "team-logs", "bob").returncode == 0
    with pytest.raises(AccessDeniedError):
        storage.for_owner("bob").read_bytes("s3://team-logs/day/part-0")
    again = tailrace("revoke", "team-logs", "bob")
    assert again.returncode != 0 and "had no grant" in again.stderr
    assert "--owner" in tailrace("create", "--help").stdout


def test_a_root_run_as_user_is_announced_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("the warning is for servers started as root")
    from tailrace.cli.commands.service import _warn_identity
    from tailrace.config import ExecutionSettings

    _warn_identity(ExecutionSettings(run_as="root", allow_root=True))
    err = capsys.readouterr().err
    assert "AS ROOT" in err and "!" * 20 in err
    _warn_identity(ExecutionSettings(users={"alice": "tr-alice"}))
    err = capsys.readouterr().err
    assert "run as OS user 'nobody'" in err and "tr-alice" in err and "ROOT" not in err
