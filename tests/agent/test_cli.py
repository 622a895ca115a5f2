"""`tailrace agent` from the command line, and the acceptance check: what the agent ships from a
generated access log is what the seed pipelines read (same lines, same per-path counts)."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tailrace.cli.main import run
from tailrace.sample.accesslog import combined_line, fluentd_line, hits
from tailrace.services import build_services

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "tailrace" / "sample" / "whatislog.q"


def write_config(
    path: Path, log: Path, state: Path, *, slice_format: str, target: str, fmt: str = "apache"
) -> Path:
    path.write_text(
        f"""
[[source]]
type = "tail"
path = "{log}"
pos_file = "{state}/access.pos"
format = "{fmt}"
tag = "apache.access"
read_from_head = true

[[match]]
pattern = "apache.*"
type = "store"
path = "{target}"
time_slice_format = "{slice_format}"
time_slice_wait = "10s"
buffer_path = "{state}/buffer"
flush_interval = "5s"
store_as = "gzip"
"""
    )
    return path


def generate(log: Path, start: datetime, end: datetime) -> list:
    items = list(hits(start, end, per_hour=900, seed=5))
    log.write_text("".join(combined_line(h) + "\n" for h in items))
    return items


def read_objects(root: Path) -> tuple[list[Path], list[str]]:
    files = sorted(p for p in root.rglob("*.gz"))
    lines: list[str] = []
    for p in files:
        lines += gzip.decompress(p.read_bytes()).decode().splitlines()
    return files, lines


def test_check_prints_the_effective_config(home: Path, tmp_path: Path, capsys):
    cfg = write_config(
        tmp_path / "agent.toml",
        tmp_path / "access_log",
        tmp_path / "state",
        slice_format="%Y%m%d/${hostname}-%H",
        target="s3://memorycraft-log/logs/",
    )
    assert run(["agent", "-c", str(cfg), "--check", "--hostname", "web7"], build_services) == 0
    out = capsys.readouterr()
    assert 'time_slice_format = "%Y%m%d/web7-%H"' in out.out
    assert 'flush_mode = "interval"' in out.out
    assert "warning:" in out.err


def test_check_reports_a_bad_config_with_exit_code_2(home: Path, tmp_path: Path, capsys):
    bad = tmp_path / "agent.toml"
    bad.write_text(
        '[[source]]\npath = "/x"\ntag = "a.b"\nformat = "apache2"\nread_from_hed = true\n[[match]]\npattern = "a.*"\npath = "/o/"\n'
    )
    assert run(["agent", "-c", str(bad), "--check"], build_services) == 2
    assert "unknown key 'read_from_hed'. Did you mean 'read_from_head'?" in capsys.readouterr().err


def test_drain_then_status(home: Path, tmp_path: Path, capsys):
    log = tmp_path / "access_log"
    items = generate(log, datetime(2024, 1, 15, 0, tzinfo=UTC), datetime(2024, 1, 15, 3, tzinfo=UTC))
    with log.open("a") as fh:
        fh.write("this is not an access log line\n")
    cfg = write_config(
        tmp_path / "agent.toml",
        log,
        tmp_path / "state",
        slice_format="%Y%m%d/${hostname}-%H",
        target="s3://memorycraft-log/logs/",
    )
    assert run(["agent", "-c", str(cfg), "--drain", "--hostname", "web7", "-q"], build_services) == 0
    files, lines = read_objects(home / "s3" / "memorycraft-log" / "logs")
    assert [f.name for f in files] == ["web7-00_0.gz", "web7-01_0.gz", "web7-02_0.gz"]
    assert len(lines) == len(items)
    capsys.readouterr()
    assert run(["agent", "status", "-c", str(cfg), "--hostname", "web7"], build_services) == 0
    text = capsys.readouterr().out
    assert re.search(rf"lines_shipped\s+{len(items)}\b", text)
    assert re.search(r"lines_malformed\s+1\b", text)
    assert run(["agent", "status", "-c", str(cfg), "--format", "prometheus"], build_services) == 0
    prom = capsys.readouterr().out
    assert f'tailrace_agent_shipped_lines_total{{source="tail.1",tag="apache.access"}} {len(items)}' in prom
    assert 'tailrace_agent_malformed_lines_total{source="tail.1",tag="apache.access"} 1' in prom
    assert "tailrace_agent_up 0" in prom  # the drained agent has exited


def test_acceptance_shipped_lines_equal_the_parsed_raw_log(home: Path, tmp_path: Path):
    """The lead's acceptance setup: `%Y-%m-%d/${hostname}-%H` under s3://memorycraft-us-log/logs/."""
    log = tmp_path / "access_log"
    items = generate(log, datetime(2024, 1, 14, 22, tzinfo=UTC), datetime(2024, 1, 16, 2, tzinfo=UTC))
    cfg = write_config(
        tmp_path / "agent.toml",
        log,
        tmp_path / "state",
        slice_format="%Y-%m-%d/${hostname}-%H",
        target="s3://memorycraft-us-log/logs/",
    )
    assert run(["agent", "-c", str(cfg), "--drain", "--hostname", "web1", "-q"], build_services) == 0
    root = home / "s3" / "memorycraft-us-log" / "logs"
    files, lines = read_objects(root)
    # The combined format has no response time, so the shipped records carry none.
    assert Counter(lines) == Counter(fluentd_line(replace(h, reqtime=None)) for h in items)
    days = sorted({f.parent.name for f in files})
    assert days == ["2024-01-14", "2024-01-15", "2024-01-16"]
    assert all(re.fullmatch(r"web1-\d\d_0\.gz", f.name) for f in files)


def test_seed_hive_script_counts_paths_like_the_raw_log(home: Path, tmp_path: Path):
    """whatislog.q (the seed Hive script) runs unchanged on the shipped objects."""
    pytest.importorskip("tailrace.engines.hive")
    log = tmp_path / "access_log"
    items = generate(log, datetime(2024, 1, 14, 22, tzinfo=UTC), datetime(2024, 1, 16, 2, tzinfo=UTC))
    cfg = write_config(
        tmp_path / "agent.toml",
        log,
        tmp_path / "state",
        slice_format="%Y%m%d/${hostname}-%H",
        target="s3://memorycraft-log/logs/",
    )
    assert run(["agent", "-c", str(cfg), "--drain", "--hostname", "web1", "-q"], build_services) == 0
    assert run(["hive", "-f", str(SAMPLE), "-d", "DATE=20240115", "-S"], build_services) == 0
    stats = home / "s3" / "memorycraft-log-archive" / "stats" / "20240115"
    got: dict[str, int] = {}
    for f in sorted(p for p in stats.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))):
        for line in f.read_text().splitlines():
            path, cnt = line.split("\t")
            got[path] = int(cnt)
    # Counted straight from the raw log: the request path of every line dated 2024-01-15.
    raw = Counter()
    pattern = re.compile(r'\[(\d\d/\w{3}/\d{4}):[^\]]*\] "\S+(?: +([^ ]*) +\S*)?"')
    for line in log.read_text().splitlines():
        m = pattern.search(line)
        if m and m.group(1) == "15/Jan/2024":
            raw[m.group(2)] += 1
    assert got == dict(raw)
    assert sum(got.values()) == sum(1 for h in items if h.time.date().isoformat() == "2024-01-15")


def test_seed_log_pipeline_runs_unchanged_on_what_the_agent_shipped(home: Path, tmp_path: Path, capsys):
    """The issue's acceptance: `tailrace run` of the seed definition (only its start moved to the
    log's days) over the agent's objects counts paths exactly as the raw log does."""
    from tailrace.sample.demo import seed_definition_text

    log = tmp_path / "access_log"
    generate(log, datetime(2024, 1, 14, 22, tzinfo=UTC), datetime(2024, 1, 16, 2, tzinfo=UTC))
    cfg = write_config(
        tmp_path / "agent.toml",
        log,
        tmp_path / "state",
        slice_format="%Y-%m-%d/${hostname}-%H",
        target="s3://memorycraft-us-log/logs/",
    )
    assert run(["agent", "-c", str(cfg), "--drain", "--hostname", "web1", "-q"], build_services) == 0
    definition = tmp_path / "log-pipeline.json"
    definition.write_text(seed_definition_text().replace("2012-12-24T00:00:00", "2024-01-15T00:00:00"))
    assert run(["run", str(definition), "--until", "2024-01-16T00:00:00", "-q"], build_services) == 0
    out = capsys.readouterr().out
    assert "@stats_2024-01-15T00:00:00  FINISHED" in out
    stats = home / "s3" / "memorycraft-us-log-archive" / "stats" / "2024-01-15"
    got = {}
    for f in sorted(p for p in stats.iterdir() if p.is_file()):
        for line in f.read_text().splitlines():
            path, cnt = (field.strip('"') for field in line.split("\t"))
            got[path] = int(cnt)
    raw = Counter()
    pattern = re.compile(r'\[(\d\d/\w{3}/\d{4}):[^\]]*\] "\S+(?: +([^ ]*) +\S*)?"')
    for line in log.read_text().splitlines():
        m = pattern.search(line)
        if m and m.group(1) == "15/Jan/2024":
            raw[m.group(2)] += 1
    assert got == dict(raw)
