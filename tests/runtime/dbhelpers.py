"""Helpers of the database node tests (imported by module name; fixtures are in conftest.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tailrace.runtime.local import RunReport

PG_JDBC = "jdbc:postgresql://127.0.0.1:5432/test"
MYSQL_JDBC = "jdbc:mysql://127.0.0.1:3306/test"
MYSQL_USER = "tr_datanodes"
MYSQL_PASSWORD = "s3cr3t-Pa55word-for-tests"
HEAD = [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
    {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def result(report: RunReport, component: str) -> Any:
    found = [r for r in report.results if r.instance.component_id == component]
    assert found, f"no instance of {component}: {[r.instance.component_id for r in report.results]}"
    return found[0]


def attempt_log(report: RunReport, component: str) -> str:
    uri = result(report, component).log_uri
    assert uri, component
    path = Path(uri.removeprefix("file://"))
    return path.read_text() if path.exists() else ""


def dump(objects: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(json.dumps({"objects": HEAD + objects}))
    return path
