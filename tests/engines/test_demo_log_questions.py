"""The demo's logs answer the questions users ask of access logs (errors per hour, slowest
paths): the Hive queries the README shows give what the generated hits say."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import timedelta

from tailrace.cli.main import run
from tailrace.sample.accesslog import hits, outages
from tailrace.sample.demo import DEMO_START, write_demo_logs
from tailrace.services import build_services

ERRORS_PER_HOUR = (
    "SELECT substr(dt, 12, 2) AS hour, count(*) AS errors FROM fluentLog "
    "LATERAL VIEW json_tuple(fluentLog.json, 'code') j AS code WHERE code LIKE '5%' "
    "GROUP BY substr(dt, 12, 2) ORDER BY hour"
)
SLOWEST = (
    "SELECT path, round(avg(CAST(t AS double)), 3) AS avg_s FROM fluentLog "
    "LATERAL VIEW json_tuple(fluentLog.json, 'path', 'reqtime') j AS path, t "
    "GROUP BY path ORDER BY avg_s DESC LIMIT 3"
)
TABLE = (
    "CREATE EXTERNAL TABLE IF NOT EXISTS fluentLog (dt string, tag string, json string) "
    "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://memorycraft-log/logs/20121224'"
)


def _day_hits() -> list:
    end = DEMO_START + timedelta(days=1)
    # write_demo_logs seeds host n with 1000 + n.
    return [h for n in (0, 1) for h in hits(DEMO_START, end, per_hour=300, seed=1000 + n)]


def test_the_generator_has_outages_and_slow_paths():
    day = _day_hits()
    codes = Counter(h.code for h in day)
    assert sum(n for c, n in codes.items() if c.startswith("5")) > 0
    spans = outages(DEMO_START)
    in_outage = [h for h in day if any(b <= h.time < e for b, e in spans)]
    outside = [h for h in day if not any(b <= h.time < e for b, e in spans)]
    # 5xx come in bursts: their rate inside the outages is far above the rate outside.
    rate_in = sum(h.code.startswith("5") for h in in_outage) / max(len(in_outage), 1)
    rate_out = sum(h.code.startswith("5") for h in outside) / max(len(outside), 1)
    assert rate_in > 10 * rate_out
    assert all(h.reqtime is not None and h.reqtime > 0 for h in day)


def test_errors_per_hour_and_slowest_paths_from_hive(home, capsys):
    write_demo_logs(home / "s3", days=1, per_hour=300)
    day = _day_hits()
    assert run(["hive", "-e", TABLE], build_services) == 0
    capsys.readouterr()

    assert run(["hive", "-e", ERRORS_PER_HOUR], build_services) == 0
    got = [tuple(line.split("\t")) for line in capsys.readouterr().out.splitlines()]
    per_hour = Counter(h.time.strftime("%H") for h in day if h.code.startswith("5"))
    assert got == [(hour, str(n)) for hour, n in sorted(per_hour.items())]
    assert got  # the day has errors

    assert run(["hive", "-e", SLOWEST], build_services) == 0
    got_paths = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    times: dict[str, list[float]] = {}
    for h in day:
        times.setdefault(h.path, []).append(h.reqtime)
    mean = {p: statistics.fmean(v) for p, v in times.items()}
    assert got_paths == sorted(mean, key=lambda p: -mean[p])[:3]
