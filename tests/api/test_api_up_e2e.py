"""End to end: `tailrace up` as a subprocess, driven by an unmodified boto3 client (every
operation, with this test as an external task runner) and by the AWS CLI (the seed log pipeline)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import client_for
from botocore import xform_name

from tailrace.api import shapes

SEED = Path(__file__).resolve().parents[2] / "src" / "tailrace" / "sample" / "log-pipeline.json"
AWS = Path(sys.executable).parent / "aws"


def _until(what: str, fn, timeout: float = 60.0):
    """Retry fn until it returns something truthy: waiting for another process to act, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def up(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(TAILRACE_HOME=str(home), PYTHONUNBUFFERED="1")
    log = (tmp_path / "up.log").open("w+")
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
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        else:
            raise AssertionError("tailrace up exited:\n" + "".join(lines) + Path(log.name).read_text())
        printed = "".join(lines)
        creds = json.loads((home / "credentials.json").read_text())
        assert (
            creds["AccessKeyId"] in printed and creds["SecretAccessKey"] in printed
        )  # shown once, at first start
        assert oct((home / "credentials.json").stat().st_mode)[-3:] == "600"
        yield url, creds, env, home
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class _Key:
    def __init__(self, creds):
        self.access_key_id, self.secret_access_key = creds["AccessKeyId"], creds["SecretAccessKey"]


def test_every_operation_against_tailrace_up(up):
    url, creds, _, _ = up
    dp = client_for(url, _Key(creds))
    used: set[str] = set()

    def call(op, **kw):
        used.add(op)
        return getattr(dp, op)(**kw)

    pid = call("create_pipeline", name="ext", uniqueId="ext-1", tags=[{"key": "a", "value": "1"}])[
        "pipelineId"
    ]
    objects = [
        {"id": "Default", "name": "Default", "fields": [{"key": "scheduleType", "stringValue": "ondemand"}]},
        {
            "id": "Job",
            "name": "Job",
            "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"},
                {"key": "command", "stringValue": "echo #{myWho}"},
                {"key": "workerGroup", "stringValue": "ext"},
                {"key": "maximumRetries", "stringValue": "0"},
            ],
        },
    ]
    params = [{"id": "myWho", "attributes": [{"key": "type", "stringValue": "String"}]}]
    assert (
        call(
            "validate_pipeline_definition", pipelineId=pid, pipelineObjects=objects, parameterObjects=params
        )["errored"]
        is False
    )
    assert (
        call(
            "put_pipeline_definition",
            pipelineId=pid,
            pipelineObjects=objects,
            parameterObjects=params,
            parameterValues=[{"id": "myWho", "stringValue": "world"}],
        )["errored"]
        is False
    )
    assert call("get_pipeline_definition", pipelineId=pid)["parameterValues"] == [
        {"id": "myWho", "stringValue": "world"}
    ]
    call("add_tags", pipelineId=pid, tags=[{"key": "b", "value": "2"}])
    call("remove_tags", pipelineId=pid, tagKeys=["a"])
    assert pid in [p["id"] for p in call("list_pipelines")["pipelineIdList"]]
    call(
        "activate_pipeline",
        pipelineId=pid,
        parameterValues=[{"id": "myWho", "stringValue": "boto3"}],
        startTimestamp=datetime.now(UTC),
    )
    assert (
        call("report_task_runner_heartbeat", taskrunnerId="ext-runner", workerGroup="ext")["terminate"]
        is False
    )

    task = _until(
        "a task for worker group ext",
        lambda: call("poll_for_task", workerGroup="ext", hostname="test-host").get("taskObject"),
    )
    attempt = {f["key"]: f.get("stringValue") for f in task["objects"][task["attemptId"]]["fields"]}
    assert attempt["command"] == "echo boto3"
    assert call("report_task_progress", taskId=task["taskId"])["canceled"] is False
    call("set_task_status", taskId=task["taskId"], taskStatus="FINISHED")

    [instance] = call(
        "query_objects",
        pipelineId=pid,
        sphere="INSTANCE",
        query={
            "selectors": [
                {"fieldName": "@componentParent", "operator": {"type": "REF_EQ", "values": ["Job"]}}
            ]
        },
    )["ids"]
    assert call("query_objects", pipelineId=pid, sphere="ATTEMPT")["ids"] == [task["attemptId"]]
    assert [c for c in call("query_objects", pipelineId=pid, sphere="COMPONENT")["ids"]] == ["Default", "Job"]
    obj = call("describe_objects", pipelineId=pid, objectIds=[instance], evaluateExpressions=True)[
        "pipelineObjects"
    ][0]
    fields = {f["key"]: f.get("stringValue", f.get("refValue")) for f in obj["fields"]}
    assert fields["@status"] == "FINISHED" and fields["@headAttempt"] == task["attemptId"]
    assert (
        call("evaluate_expression", pipelineId=pid, objectId=instance, expression="hello #{myWho}")[
            "evaluatedExpression"
        ]
        == "hello boto3"
    )
    call("set_status", pipelineId=pid, objectIds=["Job"], status="PAUSE")
    [desc] = call("describe_pipelines", pipelineIds=[pid])["pipelineDescriptionList"]
    assert desc["tags"] == [{"key": "b", "value": "2"}]
    call("deactivate_pipeline", pipelineId=pid)
    call("delete_pipeline", pipelineId=pid)
    assert used == {xform_name(op) for op in shapes.operation_names()}


def test_aws_cli_runs_the_seed_log_pipeline(up, tmp_path):
    url, creds, env, _ = up
    env = {
        **env,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }

    def aws(*args: str) -> str:
        done = subprocess.run(
            [str(AWS), "--endpoint-url", url, "datapipeline", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    pid = json.loads(aws("create-pipeline", "--name", "access-logs", "--unique-id", "seed-1"))["pipelineId"]
    out = json.loads(
        aws("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition", f"file://{SEED}")
    )
    assert out["errored"] is False
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    aws("activate-pipeline", "--pipeline-id", pid, "--start-timestamp", start)
    window = f"{start[:10]}T00:00:00,{(datetime.now(UTC) + timedelta(days=1)):%Y-%m-%dT00:00:00}"
    table = _until(
        "instances of the seed pipeline",
        lambda: (
            (t := aws("list-runs", "--pipeline-id", pid, "--schedule-interval", window)).count("@") >= 6 and t
        ),
    )
    assert table.splitlines()[0].split() == ["Name", "Scheduled", "Start", "Status"]
    for component in ("archive", "stats", "log", "emr-log"):
        assert f"@{component}_{start[:10]}T00:00:00" in table
    described = json.loads(aws("describe-pipelines", "--pipeline-ids", pid))
    state = {f["key"]: f["stringValue"] for f in described["pipelineDescriptionList"][0]["fields"]}
    assert state["@pipelineState"] == "SCHEDULED" and state["@userId"] == "default"
    listed = json.loads(aws("list-pipelines"))["pipelineIdList"]
    assert {"id": pid, "name": "access-logs"} in listed
    # A wrong secret is refused by the AWS CLI's own signature too.
    bad = subprocess.run(
        [str(AWS), "--endpoint-url", url, "datapipeline", "list-pipelines"],
        env={**env, "AWS_SECRET_ACCESS_KEY": "nope"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr


def test_tailrace_cli_from_another_directory_uses_the_endpoint_and_key(up, tmp_path):
    url, creds, env, home = up
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **env,
        "TAILRACE_HOME": str(elsewhere / "none"),
        "TAILRACE_ENDPOINT": url,
        "TAILRACE_ACCESS_KEY_ID": creds["AccessKeyId"],
        "TAILRACE_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
    }

    def tailrace(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tailrace", *args],
            env=env,
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )

    made = tailrace("create-pipeline", "--name", "remote", "--unique-id", "r-1", "--output", "json")
    assert made.returncode == 0, made.stderr
    pid = json.loads(made.stdout)["pipelineId"]
    listed = tailrace("list-pipelines", "--output", "table")
    assert listed.returncode == 0 and pid in listed.stdout and "remote" in listed.stdout
    # The credentials file in the server's home serves local clients with no variables set.
    local = subprocess.run(
        [sys.executable, "-m", "tailrace", "list-pipelines", "--output", "json"],
        env={k: v for k, v in env.items() if not k.startswith("TAILRACE_")} | {"TAILRACE_HOME": str(home)},
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert local.returncode == 0, local.stderr
    assert pid in local.stdout
