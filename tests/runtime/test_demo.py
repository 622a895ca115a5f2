"""`tailrace demo`: the newcomer's first command works, prints the last day's counts, and can be
run again with the same result."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from tailrace.cli.main import run as cli
from tailrace.definition import load_file, resolve
from tailrace.services import build_services


def test_demo_runs_twice_with_the_same_counts(home, capsys):
    assert cli(["demo", "--days", "2", "--per-hour", "60"], build_services) == 0
    first = capsys.readouterr()
    assert "2 period(s), 12 instance(s): 12 FINISHED" in first.err
    table = [line.split() for line in first.out.splitlines()[2:]]
    counts = {row[0]: int(row[1].replace(",", "")) for row in table}
    # Counted independently from the generated objects of the last day.
    raw: Counter = Counter()

    for f in sorted((home / "s3" / "memorycraft-us-log" / "logs" / "2012-12-25").glob("*.gz")):
        for line in gzip.decompress(f.read_bytes()).decode().splitlines():
            raw[json.loads(line.split("\t")[2])["path"]] += 1
    assert counts.pop("total") == sum(raw.values())
    assert counts == dict(raw)
    assert cli(["demo", "--days", "2", "--per-hour", "60"], build_services) == 0
    assert capsys.readouterr().out == first.out


def test_demo_writes_a_bounded_copy_of_the_seed_for_the_service(home, capsys):
    assert cli(["demo", "--days", "1", "--per-hour", "30"], build_services) == 0
    bounded = load_file(home / "demo" / "log-pipeline-demo.json")
    assert resolve(bounded).get("schedule").string("endDateTime") == "2012-12-25T00:00:00"
    assert cli(["validate", str(home / "demo" / "log-pipeline-demo.json")], build_services) == 0
