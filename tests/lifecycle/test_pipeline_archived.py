"""Pipelines and the archive tier, through `tailrace run`: a data node whose staged input holds an
archived object fails before the activity runs, naming the object, its class and the restore
command; S3KeyExists and S3PrefixNotEmpty count archived objects as existing, as S3 does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tailrace.cli.main import run as cli
from tailrace.services import build_services
from tailrace.storage.tiered import TieredLocalStore

SCHEDULE = [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
    {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
]


def run(tmp_path: Path, objects: list[dict[str, Any]]) -> int:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"objects": [*SCHEDULE, *objects]}))
    return cli(["run", str(path), "--until", "2012-12-25T00:00:00"], build_services)


def staged(kind: str, marker: Path) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = [
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://arch-logs/in/"},
        {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://arch-logs/out/"},
    ]
    if kind == "shell":
        activity = {
            "id": "Go",
            "type": "ShellCommandActivity",
            "stage": "true",
            "input": {"ref": "In"},
            "output": {"ref": "Out"},
            "command": f"touch {marker}; cat ${{INPUT1_STAGING_DIR}}/* > ${{OUTPUT1_STAGING_DIR}}/all.txt",
        }
    else:
        activity = {"id": "Go", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Out"}}
    return [*nodes, activity]


@pytest.fixture
def store(home: Path) -> TieredLocalStore:
    s = TieredLocalStore(home / "s3")
    s.put("arch-logs", "in/a.log", b"first\n")
    s.put("arch-logs", "in/b.log", b"second\n")
    s.archive("arch-logs", "in/b.log", "DEEP_ARCHIVE")
    return s


@pytest.mark.parametrize("kind", ["shell", "copy"])
def test_an_archived_input_fails_before_running_and_names_the_restore(
    home: Path, store: TieredLocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    marker = tmp_path / "ran"
    assert run(tmp_path, staged(kind, marker)) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "@Go_2012-12-24T00:00:00  FAILED" in text, text
    # Refused by the check of the node before staging: the message names the node and its field.
    assert (
        "object 'In', field 'directoryPath': input object s3://arch-logs/in/b.log is in storage class "
        "DEEP_ARCHIVE"
    ) in text, text
    assert "tailrace s3 restore s3://arch-logs/in/b.log --days N" in text, text
    assert not marker.exists()  # the command never started
    assert store.head("arch-logs", "out/all.txt") is None and store.head("arch-logs", "out/a.log") is None


def test_after_a_restore_the_same_pipeline_runs(
    home: Path, store: TieredLocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["s3", "restore", "s3://arch-logs/in/b.log", "--days", "2"], build_services) == 0
    marker = tmp_path / "ran"
    assert run(tmp_path, staged("shell", marker)) == 0, capsys.readouterr()
    assert marker.exists()
    assert store.get("arch-logs", "out/all.txt") == b"first\nsecond\n"
    assert store.head("arch-logs", "in/b.log").storage_class == "DEEP_ARCHIVE"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("check", "holds"),
    [
        ({"type": "S3KeyExists", "s3Key": "s3://arch-logs/in/b.log"}, True),
        ({"type": "S3PrefixNotEmpty", "s3Prefix": "s3://arch-logs/cold/"}, True),
        ({"type": "S3KeyExists", "s3Key": "s3://arch-logs/in/gone.log"}, False),
        ({"type": "S3PrefixNotEmpty", "s3Prefix": "s3://arch-logs/empty/"}, False),
    ],
)
def test_preconditions_count_archived_objects_as_existing(
    home: Path,
    store: TieredLocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    check: dict[str, str],
    holds: bool,
) -> None:
    store.put("arch-logs", "cold/only.log", b"x")
    store.archive("arch-logs", "cold/only.log", "GLACIER")  # the prefix holds nothing hot
    objects = [
        {"id": "Ready", "role": "r", **check},
        {"id": "Go", "type": "ShellCommandActivity", "command": "true", "precondition": {"ref": "Ready"}},
    ]
    run(tmp_path, objects)
    out = capsys.readouterr().out
    assert f"@Go_2012-12-24T00:00:00  {'FINISHED' if holds else 'CASCADE_FAILED'}" in out, out


def test_on_a_real_s3_endpoint_a_glacier_object_is_unreadable_until_restored() -> None:
    """The same check against moto's S3 server: HeadObject's Restore header decides."""
    import socket

    from moto.server import ThreadedMotoServer

    from tailrace.storage.s3 import S3Store

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        store = S3Store(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="t", secret_access_key="t")
        store.client.create_bucket(Bucket="remote-arch")
        store.client.put_object(Bucket="remote-arch", Key="in/cold.log", Body=b"x", StorageClass="GLACIER")
        store.put("remote-arch", "in/hot.log", b"y")
        infos = {i.key: i for i in store.list("remote-arch", "in/")}
        assert store.unreadable_class(infos["in/cold.log"]) == "GLACIER"
        assert store.unreadable_class(infos["in/hot.log"]) is None
        store.client.restore_object(Bucket="remote-arch", Key="in/cold.log", RestoreRequest={"Days": 1})
        assert store.unreadable_class(infos["in/cold.log"]) is None
    finally:
        server.stop()
