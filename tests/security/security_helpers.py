"""The attack suite's world: `tailrace up` started as root in a subprocess, with two owners that
each map to an unprivileged OS user of their own (created here when missing), a victim (alice)
with data, and an attacker (mallory) holding an ordinary key."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tailrace.definition import from_file_dict, to_wire

SERVER_SECRET = "server-env-secret-7f3a9c"
"""Put in the server's environment: no attempt log or answer may ever show it."""
USERS = {"alice": "tr-sec-alice", "mallory": "tr-sec-mallory"}
TERMINAL = {"FINISHED", "FAILED", "CANCELED", "CASCADE_FAILED", "TIMEDOUT"}


def ensure_user(name: str) -> None:
    """An unprivileged system user (CI runs as root, so the suite can make its own)."""
    if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
        return
    useradd = shutil.which("useradd")
    if useradd is None:
        pytest.skip("useradd is not available to create the owners' OS users")
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


@dataclass
class Key:
    access_key_id: str
    secret_access_key: str
    owner: str


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    keys: dict[str, Key]
    admin: Key

    def client(self, owner: str) -> Any:
        key = self.keys[owner]
        return boto3.client(
            "datapipeline",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )

    def rest(self, owner: str, path: str) -> tuple[int, bytes]:
        key = self.keys[owner]
        token = base64.b64encode(f"{key.access_key_id}:{key.secret_access_key}".encode()).decode()
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def secrets(self) -> list[str]:
        """What must never show: every secret key, the server's own environment marker."""
        return [
            SERVER_SECRET,
            self.admin.secret_access_key,
            *(k.secret_access_key for k in self.keys.values()),
        ]

    def start(self, owner: str, objects: list[dict[str, Any]], name: str) -> str:
        dp = self.client(owner)
        base = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "embedded", "maximumRetries": "0"}
        form = {"objects": [base, *objects]}
        pid = dp.create_pipeline(name=name, uniqueId=f"{name}-{time.monotonic_ns()}")["pipelineId"]
        answer = dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(form)))
        assert not answer["errored"], answer
        dp.activate_pipeline(pipelineId=pid)
        return pid

    def outcome(self, owner: str, pid: str, component: str, timeout: float = 90.0) -> dict[str, str]:
        """The component's instance fields once it ended, plus its attempt log as `log`."""
        dp = self.client(owner)
        deadline = time.monotonic() + timeout
        while True:
            ids = dp.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"]
            objs = dp.describe_objects(pipelineId=pid, objectIds=ids)["pipelineObjects"] if ids else []
            for obj in objs:
                fields = {f["key"]: f.get("stringValue") or f.get("refValue") or "" for f in obj["fields"]}
                if obj["id"].startswith(f"@{component}_") and fields.get("@status") in TERMINAL:
                    attempt = fields.get("@headAttempt", "")
                    status, body = self.rest(owner, f"/api/v1/pipelines/{pid}/attempts/{attempt}/log")
                    fields["log"] = body.decode("utf-8", "replace") if status == 200 else ""
                    return fields
            if time.monotonic() > deadline:
                raise AssertionError(f"{component} of {pid} did not end in {timeout:.0f} s: {objs}")
            time.sleep(0.3)

    def run(
        self, owner: str, objects: list[dict[str, Any]], component: str, name: str = "p"
    ) -> dict[str, str]:
        return self.outcome(owner, self.start(owner, objects, name), component)


def _create_key(env: dict[str, str], cwd: Path, owner: str) -> Key:
    out = subprocess.run(
        [sys.executable, "-m", "tailrace", "keys", "create", "--owner", owner, "--output", "json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    return Key(data["AccessKeyId"], data["SecretAccessKey"], owner)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("the attack suite runs `tailrace up` as root, as a small server would")
    for user in USERS.values():
        ensure_user(user)
    base = tmp_path_factory.mktemp("security")
    home = base / "home"
    config = base / "tailrace.toml"
    mapping = "\n".join(f'{owner} = "{user}"' for owner, user in USERS.items())
    shared = base / "shared"  # an allowed local directory, with a link planted in it
    (shared / "in").mkdir(parents=True)
    (shared / "in" / "ok.tsv").write_text("1\n")
    (shared / "in" / "planted.tsv").symlink_to(home / "credentials.json")
    # alice may reach one PostgreSQL database and her own DynamoDB tables; mallory nothing.
    reach = (
        '[databases.allowed]\nalice = "127.0.0.1:5432/test"\n[databases.dynamodb_tables]\nalice = "alice_*"\n'
    )
    config.write_text(f'allowed_local_dirs = ["{shared}"]\n[execution.users]\n{mapping}\n{reach}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(
        TAILRACE_HOME=str(home),
        TAILRACE_CONFIG=str(config),
        PYTHONUNBUFFERED="1",
        TAILRACE_TEST_SERVER_SECRET=SERVER_SECRET,
    )
    log = (base / "up.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tailrace",
            "up",
            "--s3-port",
            "off",
            "--port",
            "0",
            "--worker-group",
            "embedded",
            "--poll",
            "0.2",
        ],
        cwd=base,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise AssertionError("tailrace up exited:\n" + Path(log.name).read_text())
        creds = json.loads((home / "credentials.json").read_text())
        admin = Key(creds["AccessKeyId"], creds["SecretAccessKey"], "default")
        keys = {owner: _create_key(env, base, owner) for owner in USERS}
        yield Server(url=url, home=home, env=env, keys=keys, admin=admin)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
