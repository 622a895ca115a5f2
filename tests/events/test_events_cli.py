"""`tailrace events` without Redis: it prints the outbox of the metadata database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from events_helpers import T0

from tailrace.events.model import Broadcast, InstanceStatusChanged
from tailrace.state import Pipeline, open_store


def _tailrace(home, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env["TAILRACE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "tailrace", "events", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_events_prints_the_outbox_as_text_or_json_with_filters(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    store = open_store(f"sqlite:///{home / 'tailrace.db'}")
    with store.transaction() as tx:
        for pid, owner in (("df-a", "alice"), ("df-b", "bob")):
            tx.pipelines.add(
                Pipeline(id=pid, name=pid, unique_id=pid, owner=owner, created_at=T0, updated_at=T0)
            )
        for i in range(3):
            for pid in ("df-a", "df-b"):
                tx.events.append(
                    InstanceStatusChanged(
                        at=T0 + timedelta(seconds=i),
                        pipeline_id=pid,
                        object_id=f"@J_{i}",
                        old="RUNNING",
                        new="FINISHED",
                    )
                )
        tx.events.append(Broadcast(at=T0, text="hello"))
    ids = [r.id for r in store.events_after(0)]
    store.close()
    store.engine.dispose()

    text = _tailrace(home)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 7
    assert lines[0] == f"{ids[0]} 2024-03-01T00:00:00+00:00 instance.status df-a @J_0 RUNNING -> FINISHED"
    assert lines[-1].endswith("operator.broadcast -")

    as_json = [
        json.loads(line)
        for line in _tailrace(home, "--output", "json", "--after", str(ids[1])).stdout.splitlines()
    ]
    assert [e["id"] for e in as_json] == ids[2:]
    assert as_json[0]["payload"]["object_id"] == "@J_1" and as_json[0]["owner"] == "alice"

    bobs = _tailrace(home, "--owner", "bob", "--output", "json").stdout.splitlines()
    assert [json.loads(line)["pipelineId"] for line in bobs] == ["df-b"] * 3
    only_a = _tailrace(home, "--pipeline-id", "df-a").stdout.splitlines()
    assert len(only_a) == 3 and all(" df-a " in line for line in only_a)

    bad = _tailrace(home, "--after", "-1")
    assert bad.returncode != 0 and "--after must be an event id" in bad.stderr


def test_the_redis_password_never_shows_in_the_printed_config(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env.update(TAILRACE_HOME=str(tmp_path), TAILRACE_REDIS_URL="redis://user:s3cr3t-pw@127.0.0.1:6379/0")
    out = subprocess.run(
        [sys.executable, "-m", "tailrace", "config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "s3cr3t-pw" not in out.stdout + out.stderr
    assert "redis://user:****@127.0.0.1:6379/0" in out.stdout


def test_a_bad_redis_url_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env.update(TAILRACE_HOME=str(tmp_path), TAILRACE_REDIS_URL="http://nowhere")
    out = subprocess.run(
        [sys.executable, "-m", "tailrace", "events"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "redis_url" in out.stderr and "Traceback" not in out.stderr


def test_an_unreachable_redis_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env.update(TAILRACE_HOME=str(tmp_path), TAILRACE_REDIS_URL="redis://127.0.0.1:1/0")
    out = subprocess.run(
        [sys.executable, "-m", "tailrace", "events"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "event bus on Redis" in out.stderr and "Traceback" not in out.stderr
