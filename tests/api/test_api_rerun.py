"""A failed period fixed the AWS way (edit -> put -> activate -> rerun) through each client:
tailrace's CLI, boto3 and the AWS CLI. The rerun runs the corrected command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import T0, client_for

AWS = Path(sys.executable).parent / "aws"


def _defn(command: str) -> dict:
    return {
        "objects": [
            {
                "id": "Default",
                "scheduleType": "cron",
                "schedule": {"ref": "Daily"},
                "failureAndRerunMode": "CASCADE",
            },
            {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-01-05T00:00:00"},
            {
                "id": "Hello",
                "type": "ShellCommandActivity",
                "command": command,
                "workerGroup": "wg-fix",
                "maximumRetries": "0",
            },
        ]
    }


class _Boto:
    def __init__(self, dp) -> None:
        self.dp = dp

    def put(self, pid, path: Path) -> None:
        from tailrace.definition import from_file_dict, to_wire

        out = self.dp.put_pipeline_definition(
            pipelineId=pid, **to_wire(from_file_dict(json.loads(path.read_text())))
        )
        assert out["errored"] is False

    def activate(self, pid) -> None:
        self.dp.activate_pipeline(pipelineId=pid)

    def rerun(self, pid, iid) -> None:
        self.dp.set_status(pipelineId=pid, objectIds=[iid], status="RERUN")


class _Tailrace:
    def __init__(self, cli) -> None:
        self.cli = cli

    def _ok(self, *argv: str) -> None:
        code, out, err = self.cli(*argv)
        assert code == 0, (argv, out, err)

    def put(self, pid, path: Path) -> None:
        self._ok("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition", f"file://{path}")

    def activate(self, pid) -> None:
        self._ok("activate-pipeline", "--pipeline-id", pid)

    def rerun(self, pid, iid) -> None:
        self._ok("set-status", "--pipeline-id", pid, "--object-ids", iid, "--status", "RERUN")


class _AwsCli:
    def __init__(self, url: str, key) -> None:
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(
            AWS_ACCESS_KEY_ID=key.access_key_id,
            AWS_SECRET_ACCESS_KEY=key.secret_access_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )

    def _ok(self, *argv: str) -> str:
        done = subprocess.run(
            [str(AWS), "datapipeline", *argv, "--endpoint-url", self.url],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return done.stdout

    def put(self, pid, path: Path) -> None:
        out = json.loads(
            self._ok(
                "put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition", f"file://{path}"
            )
        )
        assert out["errored"] is False

    def activate(self, pid) -> None:
        self._ok("activate-pipeline", "--pipeline-id", pid)

    def rerun(self, pid, iid) -> None:
        self._ok("set-status", "--pipeline-id", pid, "--object-ids", iid, "--status", "RERUN")


def _run_one(world, runner, pid, outcome: str) -> str:
    """Play the task runner for the pipeline's next task; returns the command it was given."""
    world.scheduler.tick()
    task = runner.poll_for_task(workerGroup="wg-fix", hostname="fixer")["taskObject"]
    assert task["pipelineId"] == pid
    fields = task["objects"][task["attemptId"]]["fields"]
    command = next(f["stringValue"] for f in fields if f["key"] == "command")
    runner.set_task_status(taskId=task["taskId"], taskStatus=outcome, errorMessage="exit 1")
    return command


def _status(dp, pid, iid) -> str:
    obj = dp.describe_objects(pipelineId=pid, objectIds=[iid])["pipelineObjects"][0]
    return next(f["stringValue"] for f in obj["fields"] if f["key"] == "@status")


@pytest.mark.parametrize("client", ["tailrace", "boto3", "aws"])
def test_a_rerun_after_put_and_activate_runs_the_corrected_definition(world, cli, tmp_path, client):
    if client == "aws" and not AWS.exists():
        pytest.skip("the AWS CLI is not installed in this environment")
    key = cli.key  # the CLI fixture's key: every client acts as the same owner
    dp = client_for(world.server.url, key)
    tool = {
        "tailrace": lambda: _Tailrace(cli),
        "boto3": lambda: _Boto(dp),
        "aws": lambda: _AwsCli(world.server.url, key),
    }[client]()
    broken, fixed = tmp_path / "broken.json", tmp_path / "fixed.json"
    broken.write_text(json.dumps(_defn("exit 1")))
    fixed.write_text(json.dumps(_defn("echo fixed")))

    pid = dp.create_pipeline(name=f"fix-{client}", uniqueId=f"fix-{client}")["pipelineId"]
    tool.put(pid, broken)
    dp.activate_pipeline(pipelineId=pid, startTimestamp=T0)
    assert _run_one(world, dp, pid, "FAILED") == "exit 1"
    [iid] = dp.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"]
    assert _status(dp, pid, iid) == "FAILED"

    tool.put(pid, fixed)
    tool.activate(pid)
    assert dp.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"] == [iid]  # one period so far
    assert _status(dp, pid, iid) == "FAILED"
    tool.rerun(pid, iid)
    assert _run_one(world, dp, pid, "FINISHED") == "echo fixed"
    assert _status(dp, pid, iid) == "FINISHED"
