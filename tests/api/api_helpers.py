"""Shared by the API tests (imported by name: a module called `conftest` is ambiguous when several
test directories have one): the test definition, its start time, and boto3 clients for a server."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
from botocore.config import Config

T0 = datetime(2026, 1, 5, tzinfo=UTC)

DEFINITION = {
    "objects": [
        {
            "id": "Default",
            "scheduleType": "cron",
            "schedule": {"ref": "Daily"},
            "failureAndRerunMode": "CASCADE",
        },
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-01-01T00:00:00"},
        {
            "id": "Hello",
            "type": "ShellCommandActivity",
            "command": "echo #{myMsg}",
            "workerGroup": "wg-1",
            "maximumRetries": "0",
        },
    ],
    "parameters": [{"id": "myMsg", "type": "String", "default": "hi"}],
}


def client_for(url: str, key=None, *, secret: str | None = None):
    return boto3.client(
        "datapipeline",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id if key else "NOKEY",
        aws_secret_access_key=secret or (key.secret_access_key if key else "nosecret"),
        config=Config(retries={"max_attempts": 1}),
    )
