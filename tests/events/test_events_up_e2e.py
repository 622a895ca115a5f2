"""End to end: `tailrace up` with TAILRACE_REDIS_URL runs a 30-period backfill; a second OS process,
`tailrace events --follow --output json`, sees every instance status change on the Redis bus in
commit order, none missing and none twice (compared with the store's outbox)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from events_helpers import until

from tailrace.events.model import InstanceStatusChanged
from tailrace.state import SqlStateStore, Status, create_engine

pytestmark = pytest.mark.redis

OBJECTS = [
    {
        "id": "Default",
        "name": "Default",
        "fields": [
            {"key": "scheduleType", "stringValue": "cron"},
            {"key": "schedule", "refValue": "Daily"},
            {"key": "workerGroup", "stringValue": "wg"},
        ],
    },
    {
        "id": "Daily",
        "name": "Daily",
        "fields": [
            {"key": "type", "stringValue": "Schedule"},
            {"key": "period", "stringValue": "1 day"},
            {"key": "startDateTime", "stringValue": "2024-01-01T00:00:00"},
            {"key": "occurrences", "stringValue": "30"},
        ],
    },
    {
        "id": "Job",
        "name": "Job",
        "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"},
            {"key": "command", "stringValue": "true"},
        ],
    },
]


class Lines:
    """Collects a process's stdout lines on a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            with self.lock:
                self.lines.append(line)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.lines)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_a_second_process_follows_every_instance_status_change_of_a_backfill(
    tmp_path, redis_url, clean_stream
):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(
        TAILRACE_HOME=str(home),
        TAILRACE_REDIS_URL=redis_url,
        TAILRACE_REDIS_STREAM=clean_stream,
        PYTHONUNBUFFERED="1",
    )
    tailrace = [sys.executable, "-m", "tailrace"]
    up_log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [*tailrace, "up", "--s3-port", "off", "--port", "0", "--poll", "0.2", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=up_log,
        text=True,
    )
    follower = None
    try:
        banner: list[str] = []
        for line in up.stdout:
            banner.append(line)
            if m := re.search(r"listening on (http://\S+)", line):
                url = m.group(1)
                break
        else:
            raise AssertionError("tailrace up exited:\n" + "".join(banner) + Path(up_log.name).read_text())
        assert any(f"stream {clean_stream}" in line for line in banner)
        follower = subprocess.Popen(
            [*tailrace, "events", "--follow", "--output", "json"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        followed = Lines(follower)

        creds = json.loads((home / "credentials.json").read_text())
        dp = boto3.client(
            "datapipeline",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1}),
        )
        pid = dp.create_pipeline(name="backfill", uniqueId="backfill-1")["pipelineId"]
        assert dp.put_pipeline_definition(pipelineId=pid, pipelineObjects=OBJECTS)["errored"] is False
        dp.activate_pipeline(pipelineId=pid)

        store = SqlStateStore(create_engine(f"sqlite:///{home / 'tailrace.db'}"))
        try:

            def finished() -> bool:
                with store.transaction(readonly=True) as tx:
                    return tx.instances.count(pid).get(Status.FINISHED, 0) == 30

            until("30 finished instances", finished, timeout=180)
            outbox = [
                (r.id, r.event)
                for r in store.events_after(0, pipeline_id=pid, limit=100_000)
                if isinstance(r.event, InstanceStatusChanged)
            ]
            with store.transaction(readonly=True) as tx:
                assert sum(tx.instances.count(pid).values()) == 30
        finally:
            store.close()
            store.engine.dispose()
        last = outbox[-1][0]

        def seen() -> list[dict]:
            return [json.loads(line) for line in followed.snapshot()]

        until(
            "the follower to reach the outbox's last event", lambda: any(e["id"] >= last for e in seen()), 60
        )
    finally:
        if follower is not None:
            assert _stop(follower) == 0, follower.stderr.read()
        _stop(up)
        up_log.close()

    followed_events = seen()
    ids = [e["id"] for e in followed_events]
    assert ids == sorted(set(ids))  # commit order, none twice
    mine = [
        (e["id"], e["payload"]["object_id"], e["payload"]["old"], e["payload"]["new"])
        for e in followed_events
        if e["type"] == "instance.status" and e["pipelineId"] == pid
    ]
    assert mine == [(i, e.object_id, e.old, e.new) for i, e in outbox]  # none missing
    assert len({object_id for _, object_id, _, _ in mine}) == 30
    assert sum(new == "FINISHED" for *_, new in mine) == 30
    owners = {e["owner"] for e in followed_events if e["pipelineId"] == pid}
    assert len(owners) == 1 and None not in owners  # every event carries the pipeline's owner
