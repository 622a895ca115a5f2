"""The agent's `[metrics]` table: what it reads, what --check shows (never the secret), and the
per-minute tally its commits feed (status classes from the parsed `code` field)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from tailrace.agent.configfile import parse_config
from tailrace.agent.cwmetrics import Tally, metric_data
from tailrace.errors import ConfigError


def _config(tmp_path, metrics):
    data = {
        "source": [{"type": "tail", "path": str(tmp_path / "log"), "format": "apache2", "tag": "a.b"}],
        "match": [{"pattern": "a.*", "type": "store", "path": "s3://b/p/"}],
        "metrics": metrics,
    }
    return parse_config(data, origin="agent.toml", home=tmp_path, hostname="web-1")


def test_metrics_table_is_read_and_its_secret_masked(tmp_path):
    cfg = _config(
        tmp_path,
        {
            "endpoint": "http://svc:8040/",
            "aws_key_id": "TRK1",
            "aws_sec_key": "s3cr3t-agent",
            "interval": "30s",
        },
    )
    assert cfg.metrics is not None and cfg.metrics.endpoint == "http://svc:8040"
    assert cfg.metrics.interval == 30 and cfg.metrics.namespace == "Tailrace/Agent"
    shown = cfg.effective()["metrics"]
    assert shown["aws_sec_key"] == "****" and "s3cr3t-agent" not in repr(cfg)
    assert _config(tmp_path, {}).metrics is None


@pytest.mark.parametrize(
    "bad, named",
    [
        ({"aws_key_id": "TRK1"}, "endpoint"),
        ({"endpoint": "ftp://x"}, "endpoint"),
        ({"endpoint": "http://x", "interval": "0s"}, "interval"),
        ({"endpoint": "http://x", "intervall": "60s"}, "intervall"),
    ],
)
def test_bad_metrics_tables_name_the_key(tmp_path, bad, named):
    with pytest.raises(ConfigError, match=named):
        _config(tmp_path, bad)


def test_tally_counts_requests_and_classes_per_minute():
    t0 = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
    times = pl.Series(
        [t0, t0, t0.replace(minute=1), t0.replace(minute=1), t0.replace(minute=1)],
        dtype=pl.Datetime("us", "UTC"),
    )
    per_minute = Tally.requests(times, pl.Series(["200", "503", "404", None, "302"]))
    m0, m1 = int(t0.replace(second=0).timestamp()), int(t0.replace(minute=1, second=0).timestamp())
    assert per_minute[m0] == {"RequestCount": 2, "HTTPCode_2XX_Count": 1, "HTTPCode_5XX_Count": 1}
    assert per_minute[m1] == {"RequestCount": 3, "HTTPCode_4XX_Count": 1, "HTTPCode_3XX_Count": 1}
    tally = Tally()
    for minute, counts in per_minute.items():
        tally.add("web", minute, counts)
    items = metric_data(tally.take(), "web-1")
    five = [i for i in items if i["MetricName"] == "HTTPCode_5XX_Count"]
    # Both dimension sets, and a zero for the minute without 5xx (missing would read as "no data").
    assert sorted((len(i["Dimensions"]), i["Value"]) for i in five) == [
        (1, 0.0),
        (1, 1.0),
        (2, 0.0),
        (2, 1.0),
    ]
    assert tally.take() == {}
