"""Attempt logs are for people: a failed Hive script leaves one located message (no Python
traceback), and a command's colours do not leave raw ANSI escapes in the log."""

from __future__ import annotations

import json
from pathlib import Path

from tailrace.cli.main import run
from tailrace.runtime.logtext import plain
from tailrace.services import build_services


def _definition(tmp_path: Path) -> Path:
    objects = [
        {
            "id": "Default",
            "scheduleType": "cron",
            "schedule": {"ref": "S"},
            "workerGroup": "local",
            "pipelineLogUri": "s3://logs/pipeline/",
        },
        {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
        {
            "id": "Colours",
            "type": "ShellCommandActivity",
            "command": "printf '\\033[1;31mred\\033[0m and \\033]0;title\\007plain\\n'",
        },
        {
            "id": "Hive",
            "type": "HiveActivity",
            "runsOn": {"ref": "Emr"},
            "hiveScript": "SELECT 1;\nSELECT 'never closed\nFROM nowhere;",
        },
        {"id": "Emr", "type": "EmrCluster"},
    ]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"objects": objects}))
    return path


def _logs(home: Path) -> dict[str, str]:
    root = home / "s3" / "logs" / "pipeline"
    return {p.parent.parent.name: p.read_text() for p in root.rglob("attempt.log")}


def test_attempt_logs_have_no_tracebacks_and_no_escapes(home, tmp_path, capsys):
    code = run(["run", str(_definition(tmp_path)), "--until", "2012-12-25T00:00:00", "-q"], build_services)
    out = capsys.readouterr()
    assert code == 1, out.err  # the Hive script fails
    logs = _logs(home)
    colours = logs["@Colours_2012-12-24T00:00:00"]
    assert "red and plain" in colours and "\x1b" not in colours
    hive = logs["@Hive_2012-12-24T00:00:00"]
    assert "statement 2: unterminated string" in hive and ":2:8:" in hive
    assert "Traceback" not in hive and 'File "' not in hive


def test_plain_removes_csi_osc_and_short_escapes():
    assert plain("\x1b[31mred\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1bMup") == "red link up"
    assert plain("no escapes") == "no escapes"
