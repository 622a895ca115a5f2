"""The seed script (whatislog.q) verbatim, on fluentd out_s3 input, against a Python reference."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hive_helpers import SEED, write_gz
from hive_reference import seed_outputs

from tailrace.cli.main import run
from tailrace.sample.accesslog import fluentd_line, hits
from tailrace.services import build_services

JST = timezone(timedelta(hours=9))
DATE = "20121221"


def fluentd_input(seed: int = 3) -> dict[str, list[str]]:
    """Three out_s3 objects: hours around the day boundary, many ties on dt, odd records."""
    start = datetime(2012, 12, 20, 22, 0, tzinfo=JST).astimezone(UTC)
    end = datetime(2012, 12, 22, 1, 0, tzinfo=JST).astimezone(UTC)
    all_hits = list(hits(start, end, per_hour=60, seed=seed))
    lines = [fluentd_line(h, tz=JST) for h in all_hits]
    rng = random.Random(seed)
    # Same-second bursts, so ORDER BY dt has ties that must keep input order.
    burst_t = "2012-12-21T12:00:00+09:00"
    odd = [
        f"{burst_t}\tapache.access\t"
        + json.dumps({"host": f"10.0.0.{i}", "path": f"/burst/{i % 3}", "size": str(i)})
        for i in range(12)
    ]
    odd += [
        "2012-12-21T04:22:03+09:00\tapache.access",  # too few fields: tag only
        "2012-12-21T04:22:04+09:00",  # dt only
        '2012-12-21T04:22:05+09:00\tapache.access\t{"host":"10.1.1.1","path":',  # broken JSON
        "2012-12-21T04:22:06+09:00\tapache.access\t\\N",  # NULL json: all NULL, not malformed
        '2012-12-21T04:22:07+09:00\tapache.access\t{"host":"a","path":"/x"}\textra\tfields',
        '2012-12-21T04:22:08+09:00\tapache.access\t{"path":"/a\\\\b","size":"-","code":404,"user":null}',
        '2012-12-21T04:22:09+09:00\tapache.access\t{"path":"/caf\\u00e9","referer":{"a":[1,2]},"size":"12.5"}',
        '2012-12-21T04:22:10+09:00\tapache.access\t{"path":"/neg","size":"-42","agent":"tab\\tinside"}',
        "2012-12-21T04:22:11+09:00\tapache.access\t[1,2,3]",
        "\\N\tapache.access\t{}",
    ]
    for line in odd:
        lines.insert(rng.randrange(len(lines)), line)
    third = len(lines) // 3
    return {
        "ip-10-128-12-239-04_0.gz": lines[:third],
        "ip-10-128-12-239-05_0.gz": lines[third : 2 * third],
        "ip-10-128-12-240-04_0.gz": lines[2 * third :],
    }


def place_input(home: Path, objects: dict[str, list[str]]) -> list[str]:
    folder = home / "s3" / "memorycraft-log" / "logs" / DATE
    for name, lines in objects.items():
        write_gz(folder / name, lines)
    return [line for name in sorted(objects) for line in objects[name]]


def outputs(home: Path) -> tuple[Path, Path]:
    base = home / "s3" / "memorycraft-log-archive"
    return base / "archives" / DATE / "000000_0", base / "stats" / DATE / "000000_0"


def test_seed_script_matches_the_hive_reference_byte_for_byte(hive, data_home):
    ordered = place_input(data_home, fluentd_input())
    result = hive.run_script(SEED.read_text(), {"DATE": DATE}, source="whatislog.q")
    archive, stats = outputs(data_home)
    want_archive, want_stats, short, bad = seed_outputs(ordered, DATE)
    assert archive.read_bytes() == want_archive
    assert stats.read_bytes() == want_stats
    assert sorted(p.name for p in archive.parent.iterdir()) == ["000000_0"]
    kinds = [(s.kind, s.table) for s in result.statements]
    assert kinds == [
        ("CREATE TABLE", "fluentlog"),
        ("CREATE TABLE", "archivelog"),
        ("INSERT OVERWRITE", "archiveLog"),
        ("CREATE TABLE", "statlog"),
        ("INSERT OVERWRITE", "statLog"),
    ]
    assert result.statements[2].rows_written == want_archive.count(b"\n")
    assert result.rows_written == want_archive.count(b"\n") + want_stats.count(b"\n")
    assert (short, bad) == (2, 1)
    assert (result.malformed_lines, result.malformed_json) == (short, bad)


def test_the_reference_itself_sees_what_hive_would(data_home):
    lines = fluentd_input()
    flat = [line for name in sorted(lines) for line in lines[name]]
    archive, stats, _, _ = seed_outputs(flat, DATE)
    text = archive.decode()
    assert "2012-12-21T04:22:03+09:00\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n" in text
    assert "\t/a\\b\t404\t\\N\t" in text  # size '-' is NULL as bigint; "code": 404 is the string 404
    assert '\t/caf\u00e9\t\\N\t12\t{"a":[1,2]}\t' in text  # '12.5' as a bigint is 12; nested JSON kept
    assert "\t/neg\t\\N\t-42\t" in text
    assert stats.decode().startswith("\\N\t")
    bursts = [line.split("\t")[1] for line in text.splitlines() if line.startswith("2012-12-21T12:00:00")]
    in_input = [
        json.loads(line.split("\t")[2])["host"] for line in flat if line.startswith("2012-12-21T12:00:00")
    ]
    assert bursts == in_input and len(bursts) == 12  # ties keep input order


def test_cli_runs_the_seed_and_prints_progress_and_summary(home, capsys, monkeypatch):
    ordered = place_input(home, fluentd_input(seed=5))
    code = run(["hive", "-f", str(SEED), "-d", f"DATE={DATE}"], build_services)
    err = capsys.readouterr().err
    assert code == 0, err
    archive, stats = outputs(home)
    want_archive, want_stats, short, bad = seed_outputs(ordered, DATE)
    assert archive.read_bytes() == want_archive and stats.read_bytes() == want_stats
    rows = want_archive.count(b"\n")
    assert f"OK  INSERT OVERWRITE archiveLog: {rows:,} rows" in err
    assert f"malformed input: {short} short lines, {bad} bad JSON" in err
    # Table definitions live in the metadata database: a second run needs no CREATE to read them.
    code = run(["hive", "-e", "SELECT count(*) FROM archiveLog"], build_services)
    assert code == 0
    assert capsys.readouterr().out == f"{rows}\n"


def test_running_again_for_the_same_day_replaces_the_outputs(hive, data_home):
    place_input(data_home, fluentd_input())
    hive.run_script(SEED.read_text(), {"DATE": DATE})
    archive, _ = outputs(data_home)
    first = archive.read_bytes()
    hive.run_script(SEED.read_text(), {"DATE": DATE})
    assert archive.read_bytes() == first
    assert sorted(p.name for p in archive.parent.iterdir()) == ["000000_0"]


@pytest.mark.parametrize("flag", ["-d", "--define", "--hivevar"])
def test_variables_come_from_every_define_flag(home, capsys, flag):
    place_input(home, fluentd_input())
    assert run(["hive", "-S", "-f", str(SEED), flag, f"DATE={DATE}"], build_services) == 0
    assert outputs(home)[1].exists()


def test_cli_reads_the_script_from_s3(home, capsys):
    ordered = place_input(home, fluentd_input())
    script = home / "s3" / "memorycraft-scripts" / "whatislog.q"
    script.parent.mkdir(parents=True)
    script.write_text(SEED.read_text())
    code = run(
        ["hive", "-S", "-f", "s3://memorycraft-scripts/whatislog.q", "-d", f"DATE={DATE}"], build_services
    )
    assert code == 0, capsys.readouterr().err
    assert outputs(home)[0].read_bytes() == seed_outputs(ordered, DATE)[0]
    assert run(["hive", "-f", "s3://memorycraft-scripts/nope.q"], build_services) == 2
    assert "cannot read script s3://memorycraft-scripts/nope.q" in capsys.readouterr().err


def test_seed_on_a_parallel_sized_input_keeps_hive_order(hive, data_home):
    """~300k lines in 4 files: DuckDB scans in parallel, ties on dt must still keep input order."""
    start = datetime(2012, 12, 20, 23, 0, tzinfo=JST).astimezone(UTC)
    pool = [
        json.dumps(h.record(), separators=(",", ":"))
        for h in hits(start, start + timedelta(hours=6), per_hour=400, seed=11)
    ]
    rng = random.Random(11)
    objects: dict[str, list[str]] = {}
    second = datetime(2012, 12, 20, 23, 0, tzinfo=JST)
    for f in range(4):
        lines = []
        for i in range(75_000):
            stamp = (second + timedelta(seconds=(f * 75_000 + i) // 40)).isoformat()
            lines.append(f"{stamp}\tapache.access\t{pool[rng.randrange(len(pool))]}")
        objects[f"ip-10-0-0-{f}-00_0.gz"] = lines
    ordered = place_input(data_home, objects)
    hive.run_script(SEED.read_text(), {"DATE": DATE})
    archive, stats = outputs(data_home)
    want_archive, want_stats, _, _ = seed_outputs(ordered, DATE)
    assert archive.read_bytes() == want_archive
    assert stats.read_bytes() == want_stats
