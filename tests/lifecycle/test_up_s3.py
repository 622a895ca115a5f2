"""`tailrace up` serves the S3 API on --s3-port (default 8041, the setting s3_port), prints it at
start-up, and `--s3-port off` turns it off. Real subprocesses on free ports (never 8041 itself:
other tests run in parallel)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tailrace.cli.commands.service import _s3_port
from tailrace.config import load_settings

BANNER = re.compile(r"S3 API of the embedded store on (http://127\.0\.0\.1:\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(TAILRACE_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def start_up(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tailrace", "up", "--port", "0", "--workers", "1", "--no-resources", *args],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def banner(proc: subprocess.Popen[str], timeout: float = 60.0) -> list[str]:
    """The start-up lines, up to the one naming the REST API's address."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "listening on http" in line:  # the last start-up line
            break
    return lines


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir()
    yield h


def create_key(home: Path, owner: str) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "tailrace", "keys", "create", "--owner", owner, "--output", "json"],
        env=env_for(home),
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    return data["AccessKeyId"], data["SecretAccessKey"]


def test_the_default_port_is_8041_and_off_turns_it_off() -> None:
    assert (
        load_settings(environ={}, config_file=None, overrides={"home": Path("/nonexistent")}).s3_port == 8041
    )
    assert load_settings(environ={"TAILRACE_S3_PORT": "0"}).s3_port == 0
    assert _s3_port("off") == 0 and _s3_port("OFF") == 0 and _s3_port("9000") == 9000
    with pytest.raises(Exception, match="port number or 'off'"):
        _s3_port("eighty")


def test_up_serves_s3_on_its_port_and_prints_it(home: Path) -> None:
    port = free_port()
    proc = start_up(home, "--s3-port", str(port))
    try:
        lines = banner(proc)
        kid, secret = create_key(home, "alice")
        found = [m.group(1) for line in lines if (m := BANNER.search(line))]
        assert found == [f"http://127.0.0.1:{port}"], lines
        c = boto3.client(
            "s3",
            endpoint_url=found[0],
            region_name="us-east-1",
            aws_access_key_id=kid,
            aws_secret_access_key=secret,
        )
        c.create_bucket(Bucket="up-s3-logs")
        c.put_object(Bucket="up-s3-logs", Key="logs/20260301/a.gz", Body=b"through up")
        # The same object the pipelines see: the file of the embedded store.
        assert (home / "s3" / "up-s3-logs" / "logs/20260301/a.gz").read_bytes() == b"through up"
    finally:
        stop(proc)


def test_up_with_s3_off_serves_no_s3(home: Path) -> None:
    proc = start_up(home, "--s3-port", "off")
    try:
        lines = banner(proc)
        assert any("metadata" in line for line in lines), lines
        assert not any(BANNER.search(line) for line in lines), lines
    finally:
        stop(proc)


def test_a_taken_s3_port_is_a_clear_error(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = start_up(home, "--s3-port", str(port))
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None)
    assert f"cannot listen on 127.0.0.1:{port}" in out and "--s3-port off" in out, out
    assert "Traceback" not in out, out
