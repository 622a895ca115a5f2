"""The demo's data: a few days of fluentd-format access logs for two hosts, in the embedded
store where the seed log pipeline reads them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from tailrace.sample.accesslog import hits, write_fluentd_objects

DEMO_HOSTS = ("ip-10-128-12-239", "ip-10-128-40-17")
DEMO_START = datetime(2012, 12, 24, tzinfo=UTC)
LOG_BUCKET = "memorycraft-us-log"
HIVE_LOG_BUCKET = "memorycraft-log"


def seed_definition_text() -> str:
    return resources.files("tailrace.sample").joinpath("log-pipeline.json").read_text()


def hive_script_text() -> str:
    return resources.files("tailrace.sample").joinpath("whatislog.q").read_text()


def write_demo_logs(s3_root: Path, *, days: int = 3, per_hour: int = 900) -> int:
    """(Re)write the demo's log objects under <s3_root>/memorycraft-us-log/logs/YYYY-MM-DD/ (the
    seed pipeline's input) and <s3_root>/memorycraft-log/logs/YYYYMMDD/ (whatislog.q's input).

    Deterministic: running twice writes the same bytes. Returns the number of lines written.
    """
    root = s3_root / LOG_BUCKET / "logs"
    hive_root = s3_root / HIVE_LOG_BUCKET / "logs"
    end = DEMO_START + timedelta(days=days)
    total = 0
    by_host = {}
    for n, host in enumerate(DEMO_HOSTS):
        items = list(hits(DEMO_START, end, per_hour=per_hour, seed=1000 + n))
        by_host[host] = items
        total += len(items)
    for day in range(days):
        when = DEMO_START + timedelta(days=day)
        shutil.rmtree(root / when.strftime("%Y-%m-%d"), ignore_errors=True)
        shutil.rmtree(hive_root / when.strftime("%Y%m%d"), ignore_errors=True)
    write_fluentd_objects(root, by_host, day_format="%Y-%m-%d")
    write_fluentd_objects(hive_root, by_host, day_format="%Y%m%d")
    return total
