"""`tailrace s3 serve --processes 2`: two interpreters accept on one socket and serve the same
objects, each refusing another owner's bucket; the extra process stops with the first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .test_up_s3 import banner, create_key, env_for, free_port, stop


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def client(url: str, key: tuple[str, str]) -> Any:
    # A fresh client is a fresh connection: the kernel hands each to one of the processes.
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key[0],
                        aws_secret_access_key=key[1], config=Config(s3={"addressing_style": "path"},
                        retries={"max_attempts": 1}))  # fmt: skip


def test_two_processes_serve_the_same_objects_and_refuse_other_owners(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tailrace", "s3", "serve", "--port", str(port), "--processes", "2"],
        env=env_for(home),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and "serving S3" in proc.stdout.readline()
        alice, bob = create_key(home, "alice"), create_key(home, "bob")  # the database exists now
        extra = children(proc.pid)
        assert len(extra) == 1
        url = f"http://127.0.0.1:{port}"
        client(url, alice).create_bucket(Bucket="shared-logs")
        for i in range(12):
            client(url, alice).put_object(Bucket="shared-logs", Key=f"k{i}", Body=b"v%d" % i)
        for i in range(12):
            assert (
                client(url, alice).get_object(Bucket="shared-logs", Key=f"k{i}")["Body"].read() == b"v%d" % i
            )
            with pytest.raises(ClientError) as e:
                client(url, bob).get_object(Bucket="shared-logs", Key=f"k{i}")
            assert e.value.response["Error"]["Code"] == "AccessDenied"
        keys = client(url, alice).list_objects_v2(Bucket="shared-logs")["Contents"]
        assert len(keys) == 12
    finally:
        stop(proc)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in extra) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in extra)


def test_processes_must_be_positive(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "tailrace", "s3", "serve", "--processes", "0"],
                         env=env_for(tmp_path), capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0 and "--processes must be at least 1" in out.stderr


def test_up_serves_s3_from_s3_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tailrace", "up", "--port", "0", "--workers", "1", "--no-resources",
         "--s3-port", str(port)],
        env={**env_for(home), "TAILRACE_S3_PROCESSES": "2"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        lines = banner(proc)
        assert any(f"127.0.0.1:{port} (2 processes)" in line for line in lines), lines
        s3_children = [
            pid for pid in children(proc.pid)
            if b"s3\0serve\0--fd" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # fmt: skip
        assert len(s3_children) == 1
        alice, bob = create_key(home, "alice"), create_key(home, "bob")
        url = f"http://127.0.0.1:{port}"
        client(url, alice).create_bucket(Bucket="up-logs")
        for i in range(6):
            client(url, alice).put_object(Bucket="up-logs", Key=f"k{i}", Body=b"up")
            with pytest.raises(ClientError) as e:
                client(url, bob).get_object(Bucket="up-logs", Key=f"k{i}")
            assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert (home / "s3" / "up-logs" / "k5").read_bytes() == b"up"
    finally:
        stop(proc)
