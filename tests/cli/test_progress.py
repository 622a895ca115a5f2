"""Progress on long work: a counter with rate and ETA, not one stderr line per step."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from tailrace.cli.main import run
from tailrace.cli.progress import Progress
from tailrace.services import build_services


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_at_intervals_with_rate_and_eta():
    out, clock = io.StringIO(), Clock()
    p = Progress("periods", stream=out, tty=False, interval=10, clock=clock)
    p.update(total=60, done=0)
    for n in range(1, 61):
        clock.t += 1  # one period a second
        p.update(done=n)
    p.finish()
    lines = out.getvalue().splitlines()
    assert 6 <= len(lines) <= 9  # every 10 s, not 60 lines
    assert lines[0].startswith("0/60 periods (0%)")
    assert "10/60 periods (16%), 1.0/s, ETA 0:50" in lines
    assert lines[-1] == "60/60 periods (100%), 1.0/s"


def test_a_terminal_gets_one_line_rewritten_and_notes_above_it():
    out, clock = io.StringIO(), Clock()
    p = Progress("instances", stream=out, tty=True, clock=clock)
    p.update(total=4, done=1, current="running @a")
    clock.t += 1
    p.note("warning: something")
    clock.t += 1
    p.update(done=4)
    p.finish()
    text = out.getvalue()
    assert text.count("\n") == 2  # the note, and the end of the counter
    assert "\rwarning: something\n" in text
    assert text.rstrip("\n").rsplit("\r", 1)[-1].startswith("4/4 instances (100%)")


def _daily(tmp_path: Path, days: int) -> Path:
    objects = [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
        {"id": "S", "type": "Schedule", "startDateTime": "2012-01-01T00:00:00", "period": "1 day"},
        {"id": "Step", "type": "ShellCommandActivity", "command": "true"},
    ]
    path = tmp_path / "daily.json"
    path.write_text(json.dumps({"objects": objects}))
    return path


def test_a_backfill_prints_a_counter_and_where_the_logs_went(home, tmp_path, capsys):
    days = 40
    code = run(
        ["run", str(_daily(tmp_path, days)), "--until", f"2012-02-{days - 31 + 1:02d}T00:00:00"],
        build_services,
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.count("  FINISHED\n") == days  # one result line per instance on stdout
    err = out.err.splitlines()
    assert f"{days}/{days} instances (100%)" in out.err
    assert not any(line.startswith("running @") for line in err)
    assert len(err) < 15
    logs = [line for line in err if line.startswith("attempt logs: ")]
    assert logs and str((home / "logs").resolve()) in logs[0]
    folder = Path(logs[0].removeprefix("attempt logs: ").split(" ", 1)[0])
    assert len(list(folder.rglob("attempt.log"))) == days


def test_quiet_prints_nothing_on_stderr(home, tmp_path, capsys):
    assert run(["run", str(_daily(tmp_path, 3)), "--until", "2012-01-04T00:00:00", "-q"], build_services) == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.count("FINISHED") == 3
    assert re.search(r"@Step_2012-01-03T00:00:00\s+FINISHED", out.out)
