"""`tailrace s3api`, `tailrace lifecycle run` and `tailrace s3 restore` as real subprocesses, on the
embedded store and against moto's S3 server (with the unchanged AWS CLI for comparison)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tailrace.storage.tiered import TieredLocalStore

RULES = {
    "Rules": [
        {
            "ID": "raw-logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 365},
        }
    ]
}


def tailrace(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "TAILRACE_HOME": str(home), **(env or {})}
    full.pop("TAILRACE_S3_ENDPOINT_URL", None) if not env else None
    full.pop("TAILRACE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "tailrace", *args], env=full, capture_output=True, text=True, timeout=120
    )


def test_put_run_restore_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = TieredLocalStore(home / "s3")
    created = datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp()
    for i in range(3):
        store.put("weblogs", f"logs/20260301/host-10_{i}.gz", b"x" * (200_000 + i))
        os.utime(store.hot_path("weblogs", f"logs/20260301/host-10_{i}.gz"), (created, created))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))

    out = tailrace(
        home, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "weblogs",
        "--lifecycle-configuration", f"file://{rules}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = tailrace(home, "s3api", "get-bucket-lifecycle-configuration", "--bucket", "weblogs")
    assert json.loads(got.stdout)["Rules"] == RULES["Rules"]

    early = tailrace(home, "lifecycle", "run", "--now", "2026-03-08T23:59:59Z")
    assert "nothing due" in early.stdout, early.stdout + early.stderr
    dry = tailrace(home, "lifecycle", "run", "--dry-run", "--now", "2026-03-09T00:00:00Z")
    assert "weblogs  rule raw-logs  transition:GLACIER  3 objects  600003 bytes" in dry.stdout
    assert store.head("weblogs", "logs/20260301/host-10_0.gz").storage_class == "STANDARD"  # type: ignore[union-attr]
    done = tailrace(home, "lifecycle", "run", "--now", "2026-03-09T00:00:00Z", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["actions"][0]["objects"] == 3
    assert store.head("weblogs", "logs/20260301/host-10_0.gz").storage_class == "GLACIER"  # type: ignore[union-attr]

    restored = tailrace(home, "s3", "restore", "s3://weblogs/logs/20260301/host-10_1.gz", "--days", "3")
    assert restored.returncode == 0, restored.stderr
    assert store.get("weblogs", "logs/20260301/host-10_1.gz") == b"x" * 200_001

    bad = tailrace(home, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "weblogs",
                   "--lifecycle-configuration", '{"Rules": [{"ID": "a", "Status": "Enabled", "Filter": {},'
                   ' "Expiration": {"Days": 0}}]}')  # fmt: skip
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr and "Rule[0] (ID 'a').Expiration.Days" in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    exe = Path(sys.executable).with_name("aws")
    return subprocess.run(
        [str(exe), "--endpoint-url", url, *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        ("accepted", RULES),
        ("no-filter", {"Rules": [{"ID": "x", "Status": "Enabled", "Expiration": {"Days": 1}}]}),
        (
            "filter-and-prefix",
            {
                "Rules": [
                    {
                        "ID": "x",
                        "Status": "Enabled",
                        "Prefix": "a",
                        "Filter": {"Prefix": "a"},
                        "Expiration": {"Days": 1},
                    }
                ]
            },
        ),
    ],
)
def test_same_verdict_as_s3_on_moto(tmp_path: Path, moto_url: str, name: str, rules: dict) -> None:  # type: ignore[type-arg]
    bucket = f"lc-{name}"
    assert aws(moto_url, "s3api", "create-bucket", "--bucket", bucket).returncode == 0
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    theirs = aws(moto_url, "s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
                 "--lifecycle-configuration", f"file://{path}")  # fmt: skip
    ours = tailrace(tmp_path / "home", "s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
                    "--lifecycle-configuration", f"file://{path}")  # fmt: skip
    assert (theirs.returncode == 0) == (ours.returncode == 0), (theirs.stderr, ours.stderr)
    if theirs.returncode:
        code = "MalformedXML"
        assert code in theirs.stderr and code in ours.stderr


def test_on_a_real_endpoint_the_configuration_goes_on_the_bucket(tmp_path: Path, moto_url: str) -> None:
    assert aws(moto_url, "s3api", "create-bucket", "--bucket", "remote-logs").returncode == 0
    env = {
        "TAILRACE_S3_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TAILRACE_AWS_ACCESS_KEY_ID": "testing",
        "TAILRACE_AWS_SECRET_ACCESS_KEY": "testing",
    }
    out = tailrace(tmp_path / "home", "s3api", "put-bucket-lifecycle-configuration", "--bucket", "remote-logs",
                   "--lifecycle-configuration", json.dumps(RULES), env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    theirs = aws(moto_url, "s3api", "get-bucket-lifecycle-configuration", "--bucket", "remote-logs")
    assert theirs.returncode == 0, theirs.stderr
    rule = json.loads(theirs.stdout)["Rules"][0]
    assert rule["ID"] == "raw-logs"
    assert rule["Transitions"] == [{"Days": 7, "StorageClass": "GLACIER"}]
    assert rule["Expiration"] == {"Days": 365}
    run = tailrace(tmp_path / "home", "lifecycle", "run", env=env)
    assert "S3 applies" in run.stdout
