"""`tailrace run` end to end on the embedded defaults: the seed log pipeline, bad input, actions."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tailrace.cli.main import run as cli
from tailrace.sample.accesslog import fluentd_line, hits, write_fluentd_objects
from tailrace.sample.demo import seed_definition_text
from tailrace.services import build_services

DAY1 = datetime(2012, 12, 24, tzinfo=UTC)


def tailrace(*argv: str) -> int:
    return cli(list(argv), build_services)


def write_logs(home: Path, days: int = 2) -> dict[str, list[str]]:
    """Two hosts of fluentd lines per day under the seed pipeline's input folders; returns the
    raw lines by day (the reference the outputs are checked against)."""
    by_host = {
        f"ip-10-0-0-{n}": list(hits(DAY1, DAY1 + timedelta(days=days), per_hour=120, seed=n)) for n in (1, 2)
    }
    write_fluentd_objects(home / "s3" / "memorycraft-us-log" / "logs", by_host)
    lines: dict[str, list[str]] = {}
    for items in by_host.values():
        for hit in items:
            lines.setdefault(hit.time.strftime("%Y-%m-%d"), []).append(fluentd_line(hit))
    return lines


def expected_outputs(raw: list[str], day: str) -> tuple[Counter, bytes]:
    """Hive semantics, written independently of the engine: json_tuple + substr + CSV SerDe."""
    keys = ("host", "user", "method", "path", "code", "size", "referer", "agent")
    rows: Counter = Counter()
    counts: Counter = Counter()
    for line in raw:
        dt, _tag, blob = line.split("\t")
        if dt[:10] != day:
            continue
        rec = json.loads(blob)
        values = [dt, *(rec.get(k) for k in keys)]
        rows["\t".join(f'"{v}"' for v in values)] += 1
        counts[rec["path"]] += 1
    stats = "".join(f'"{path}"\t"{n}"\n' for path, n in sorted(counts.items())).encode()
    return rows, stats


def read_dir(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.iterdir()) if p.is_file())


def write_definition(tmp: Path, text: str | None = None, **replace: str) -> Path:
    body = text or seed_definition_text()
    for old, new in replace.items():
        body = body.replace(old, new)
    path = tmp / "log-pipeline.json"
    path.write_text(body)
    return path


def test_seed_pipeline_runs_two_periods_and_matches_hive_semantics(home, tmp_path, capsys):
    raw = write_logs(home)
    definition = write_definition(tmp_path)
    assert tailrace("run", str(definition), "--until", "2012-12-26T00:00:00") == 0
    out = capsys.readouterr().out.splitlines()
    assert "@archive_2012-12-24T00:00:00  FINISHED" in out
    assert "@stats_2012-12-25T00:00:00  FINISHED" in out
    assert not any("2012-12-26" in line for line in out)
    s3 = home / "s3" / "memorycraft-us-log-archive"
    for day in ("2012-12-24", "2012-12-25"):
        rows, stats = expected_outputs(raw[day], day)
        archive = read_dir(s3 / "archive" / day).decode().splitlines()
        assert Counter(archive) == rows
        stamps = [next(csv.reader(io.StringIO(r), delimiter="\t"))[0] for r in archive]
        assert stamps == sorted(stamps), "ORDER BY dt must hold across the output files in name order"
        assert read_dir(s3 / "stats" / day) == stats
    # The attempt log is kept under pipelineLogUri in the service's layout.
    logs = list((home / "s3" / "memorycraft-us-hive-log" / "pipeline").rglob("attempt.log"))
    assert any("@archive_2012-12-24T00:00:00_Attempt=1" in str(p) for p in logs)


def test_missing_input_folder_fails_naming_the_node_and_keeps_earlier_outputs(home, tmp_path, capsys):
    raw = write_logs(home, days=1)
    definition = write_definition(tmp_path)
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") == 0
    stats_day1 = home / "s3" / "memorycraft-us-log-archive" / "stats" / "2012-12-24"
    before = read_dir(stats_day1)
    capsys.readouterr()
    assert tailrace("run", str(definition), "--until", "2012-12-26T00:00:00") == 1
    captured = capsys.readouterr()
    assert "@archive_2012-12-25T00:00:00  FAILED" in captured.out
    assert "@log-archive_2012-12-25T00:00:00  CASCADE_FAILED" in captured.out
    assert "object 'log', field 'directoryPath'" in captured.out + captured.err
    assert "s3://memorycraft-us-log/logs/2012-12-25/" in captured.out + captured.err
    assert read_dir(stats_day1) == before == expected_outputs(raw["2012-12-24"], "2012-12-24")[1]


def test_sql_error_names_the_statement_line_and_column(home, tmp_path, capsys):
    write_logs(home, days=1)
    definition = write_definition(tmp_path, **{"SELECT path,COUNT(dt)": "SELECT pathh,COUNT(dt)"})
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "@stats_2012-12-24T00:00:00  FAILED" in captured.out
    assert "stats.hiveScript:1:42: statement 1:" in text and "'pathh'" in text


def test_reference_to_a_missing_object_is_refused_before_running(home, tmp_path, capsys):
    write_logs(home, days=1)
    definition = write_definition(
        tmp_path, **{'"runsOn": {"ref": "emr-log"}': '"runsOn": {"ref": "emr-lgo"}'}
    )
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") != 0
    err = capsys.readouterr().err
    assert "emr-lgo" in err and "runsOn" in err and "archive" in err
    assert not (home / "s3" / "memorycraft-us-log-archive").exists()


def test_expression_that_does_not_parse_names_object_field_and_column(home, tmp_path, capsys):
    write_logs(home, days=1)
    definition = write_definition(
        tmp_path,
        **{
            "archive/#{@scheduledStartTime.format('YYYY-MM-dd')}/": "archive/#{@scheduledStartTime.format('YYYY-MM-dd'}/"
        },
    )
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") != 0
    err = capsys.readouterr().err
    assert "log-archive" in err and "directoryPath" in err and "column" in err.lower()


def test_malformed_lines_are_null_as_in_hive_and_counted(home, tmp_path, capsys):
    folder = home / "s3" / "memorycraft-us-log" / "logs" / "2012-12-24"
    folder.mkdir(parents=True)
    good = '2012-12-24T01:00:00+00:00\tapache.access\t{"host":"h","user":"-","method":"GET","path":"/a","code":"200","size":"-","referer":"-","agent":"x"}'
    lines = [
        good,
        "2012-12-24T02:00:00+00:00\tapache.access",
        "2012-12-24T03:00:00+00:00\tapache.access\t{broken",
        good,
    ]
    with gzip.open(folder / "host-01_0.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    definition = write_definition(tmp_path)
    assert tailrace("run", str(definition), "--until", "2012-12-25T00:00:00") == 0
    err = capsys.readouterr().err
    for activity in ("archive", "stats"):
        assert (
            f"@{activity}_2012-12-24T00:00:00: 1 malformed line(s) (too few fields; missing values read as NULL), "
            "1 malformed JSON record(s)" in err
        )
    stats = read_dir(home / "s3" / "memorycraft-us-log-archive" / "stats" / "2012-12-24").decode()
    # Two rows had no path (too few fields / broken JSON): Hive groups them under NULL.
    assert '"/a"\t"2"' in stats
    assert stats.count("\n") == 2


def test_shell_activity_stages_inputs_and_outputs_and_fires_on_fail(home, tmp_path, capsys):
    src = home / "s3" / "bucket" / "in" / "2012-12-24"
    src.mkdir(parents=True)
    (src / "a.txt").write_text("hello\n")
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
            {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
            {
                "id": "In",
                "type": "S3DataNode",
                "directoryPath": "s3://bucket/in/#{format(@scheduledStartTime,'YYYY-MM-dd')}",
            },
            {
                "id": "Out",
                "type": "S3DataNode",
                "directoryPath": "s3://bucket/out/#{format(@scheduledStartTime,'YYYY-MM-dd')}",
            },
            {
                "id": "Copy",
                "type": "ShellCommandActivity",
                "stage": "true",
                "input": {"ref": "In"},
                "output": {"ref": "Out"},
                "command": "tr a-z A-Z < ${INPUT1_STAGING_DIR}/a.txt > ${OUTPUT1_STAGING_DIR}/b.txt",
            },
            {
                "id": "Fail",
                "type": "ShellCommandActivity",
                "command": "echo boom >&2; exit 3",
                "dependsOn": {"ref": "Copy"},
                "onFail": {"ref": "Alarm"},
            },
            {
                "id": "Alarm",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:1:ops",
                "role": "r",
                "subject": "failed",
                "message": "Error for interval #{node.@scheduledStartTime}..#{node.@scheduledEndTime}.",
            },
        ]
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(definition))
    assert tailrace("run", str(path), "--until", "2012-12-25T00:00:00") == 1
    captured = capsys.readouterr()
    assert (home / "s3" / "bucket" / "out" / "2012-12-24" / "b.txt").read_text() == "HELLO\n"
    assert "@Copy_2012-12-24T00:00:00  FINISHED" in captured.out
    assert "@Fail_2012-12-24T00:00:00  FAILED" in captured.out
    assert "status 3" in captured.out and "boom" in captured.out
    assert "Error for interval 2012-12-24T00:00:00..2012-12-25T00:00:00." in captured.err


@pytest.mark.parametrize(
    "pre,expected", [("s3://bucket/ready/_SUCCESS", "FINISHED"), ("s3://bucket/nope", "FAILED")]
)
def test_s3_key_exists_gates_the_data_node(home, tmp_path, capsys, pre, expected):
    (home / "s3" / "bucket" / "ready").mkdir(parents=True)
    (home / "s3" / "bucket" / "ready" / "_SUCCESS").write_text("")
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
            {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
            {"id": "Ready", "type": "S3KeyExists", "s3Key": pre, "role": "r"},
            {
                "id": "In",
                "type": "S3DataNode",
                "directoryPath": "s3://bucket/ready/",
                "precondition": {"ref": "Ready"},
            },
            {"id": "Go", "type": "ShellCommandActivity", "command": "true", "input": {"ref": "In"}},
        ]
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(definition))
    tailrace("run", str(path), "--until", "2012-12-25T00:00:00")
    out = capsys.readouterr().out
    assert f"@Ready_2012-12-24T00:00:00  {expected}" in out
    assert f"@Go_2012-12-24T00:00:00  {'FINISHED' if expected == 'FINISHED' else 'CASCADE_FAILED'}" in out


def test_a_long_backfill_is_created_over_several_ticks_and_runs_whole(home, tmp_path, capsys):
    # 1040 periods: more than one bounded scheduler tick creates (40 steps of 25); none is left out.
    definition = {
        "objects": [
            {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}},
            {"id": "S", "type": "Schedule", "startDateTime": "2024-01-01T00:00:00", "period": "15 minutes"},
            {"id": "N", "type": "S3DataNode", "directoryPath": "s3://b/x/"},
        ]
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(definition))
    assert tailrace("run", str(path), "--until", "2024-01-11T20:00:00") == 0
    captured = capsys.readouterr()
    assert captured.out.count("  FINISHED\n") == 1040
    assert "@N_2024-01-11T19:45:00  FINISHED" in captured.out
    assert "@N_2024-01-11T20:00:00" not in captured.out  # a period starting at --until is not run
    assert "1040 period(s), 1040 instance(s): 1040 FINISHED" in captured.err
