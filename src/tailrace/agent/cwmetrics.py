"""The agent's CloudWatch metrics: per source, per minute and per host, the request count and the
count by status class (2xx/3xx/4xx/5xx from the parsed `code` field), lines shipped and parse
errors, reported with PutMetricData to the service's CloudWatch endpoint and signed with the
agent's own key, as the CloudWatch agent reports to CloudWatch.

Requests are counted by the minute of their own log time when their lines are committed to the
buffer (a line read again after a crash is not counted twice within one run); lines shipped and
parse errors by the minute they happened. Every `interval` the minutes gathered so far are sent;
a failed send keeps them for the next one (up to `max_pending_minutes`, then the oldest are
dropped with a warning). Counts not yet sent when the agent is killed are lost: metrics are not
part of the exactly-once promise the logs have.

`[metrics]` in the agent's TOML:

    [metrics]
    endpoint = "http://tailrace.internal:8040"   # tailrace up (the CloudWatch API)
    region = "us-east-1"
    aws_key_id = "TRK..."
    aws_sec_key = "..."                          # never printed by --check
    namespace = "Tailrace/Agent"
    interval = "60s"
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

log = logging.getLogger("tailrace.agent")

NAMESPACE = "Tailrace/Agent"
CLASSES = ("2xx", "3xx", "4xx", "5xx")
METRIC_OF_CLASS = {c: f"HTTPCode_{c.upper()}_Count" for c in CLASSES}
KEYS = ("RequestCount", *METRIC_OF_CLASS.values(), "LinesShipped", "ParseErrors")


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    endpoint: str
    region: str = "us-east-1"
    aws_key_id: str | None = None
    aws_sec_key: str | None = field(default=None, repr=False)
    namespace: str = NAMESPACE
    interval: float = 60.0
    max_pending_minutes: int = 180


def metrics_config(table: Any) -> MetricsConfig | None:
    """From the `[metrics]` table (a configfile.Table), or None when the agent reports none."""
    endpoint = table.text("endpoint")
    if not endpoint:
        if table.raw("aws_key_id", "aws_sec_key", "namespace"):
            raise table.fail("endpoint", None, "the URL of the service's API (tailrace up)")
        return None
    if not endpoint.startswith(("http://", "https://")):
        raise table.fail("endpoint", endpoint, "an http:// or https:// URL")
    interval = table.duration("interval", default=60.0)
    if interval <= 0:
        raise table.fail("interval", interval, "a positive duration")
    return MetricsConfig(
        endpoint=endpoint.rstrip("/"),
        region=table.text("region", default="us-east-1") or "us-east-1",
        aws_key_id=table.text("aws_key_id"),
        aws_sec_key=table.text("aws_sec_key"),
        namespace=table.text("namespace", default=NAMESPACE) or NAMESPACE,
        interval=interval,
    )


Key = tuple[str, int]
"""(source id, minute as epoch seconds)."""


class Tally:
    """Counts per (source, minute), merged in by the agent's commits; `take()` hands them over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Key, dict[str, float]] = defaultdict(lambda: dict.fromkeys(KEYS, 0.0))

    @staticmethod
    def requests(times: pl.Series, codes: pl.Series | list[Any] | None) -> dict[int, dict[str, float]]:
        """Per minute of `times`: the request count and the count per status class of `codes`
        (rows whose code is missing or not a 1xx-5xx number count as requests only)."""
        if codes is None:
            codes = pl.Series("code", [None] * len(times))
        frame = pl.DataFrame(
            {
                "minute": times.dt.truncate("1m").dt.epoch("s"),
                "code": pl.Series("code", codes).cast(pl.Utf8, strict=False),
            }
        ).with_columns(cls=pl.col("code").str.slice(0, 1))
        out: dict[int, dict[str, float]] = {}
        for row in frame.group_by("minute", "cls").len().iter_rows(named=True):
            minute = out.setdefault(int(row["minute"]), {})
            minute["RequestCount"] = minute.get("RequestCount", 0.0) + row["len"]
            cls = f"{row['cls']}xx" if row["cls"] else None
            if cls in METRIC_OF_CLASS:
                minute[METRIC_OF_CLASS[cls]] = minute.get(METRIC_OF_CLASS[cls], 0.0) + row["len"]
        return out

    def add(self, source: str, minute: int, counts: Mapping[str, float]) -> None:
        with self._lock:
            into = self._counts[(source, minute)]
            for name, n in counts.items():
                into[name] += n

    def add_now(self, source: str, when: float, name: str, n: float) -> None:
        if n:
            self.add(source, int(when // 60 * 60), {name: n})

    def take(self) -> dict[Key, dict[str, float]]:
        with self._lock:
            out, self._counts = dict(self._counts), defaultdict(lambda: dict.fromkeys(KEYS, 0.0))
        return out

    def put_back(self, counts: Mapping[Key, Mapping[str, float]], keep: int) -> None:
        """Counts a send could not deliver, for the next one (the newest `keep` minutes)."""
        minutes = sorted({m for _, m in counts})[-keep:]
        dropped = len({m for _, m in counts}) - len(minutes)
        if dropped:
            log.warning("metrics: %d minute(s) could not be sent and were dropped", dropped)
        for (source, minute), values in counts.items():
            if minute in minutes:
                self.add(source, minute, values)


def metric_data(counts: Mapping[Key, Mapping[str, float]], hostname: str) -> list[dict[str, Any]]:
    """PutMetricData items: each count with dimensions Source and Source+Host (CloudWatch does
    not add dimensions up, so both are sent, as its agents do)."""
    items = []
    for (source, minute), values in sorted(counts.items()):
        stamp = datetime.fromtimestamp(minute, UTC)
        for name in KEYS:
            value = values.get(name, 0.0)
            if name in ("LinesShipped", "ParseErrors") and not value:
                continue
            if name in METRIC_OF_CLASS.values() and not values.get("RequestCount"):
                continue  # no requests that minute: the classes are missing, not zero
            if name == "RequestCount" and not value:
                continue
            for dims in (
                [{"Name": "Source", "Value": source}],
                [{"Name": "Source", "Value": source}, {"Name": "Host", "Value": hostname}],
            ):
                items.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": stamp,
                        "Value": float(value),
                        "Unit": "Count",
                    }
                )
    return items


def codes_of(parsed: Any) -> pl.Series | list[Any] | None:
    """The parsed `code` field (HTTP status) of each good row of an agent.parsers.Parsed."""
    if parsed.frame is not None:
        return parsed.frame.get_column("code") if "code" in parsed.frame.columns else None
    if parsed.dicts is not None:
        return [d.get("code") for d in parsed.dicts]
    return None


Put = Callable[[str, list[dict[str, Any]]], None]
"""(namespace, items) -> None; raises on failure."""


def boto3_put(config: MetricsConfig) -> Put:
    """PutMetricData through an unchanged boto3 `cloudwatch` client."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "cloudwatch",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=config.aws_key_id,
        aws_secret_access_key=config.aws_sec_key,
        config=Config(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=30),
    )

    def put(namespace: str, items: list[dict[str, Any]]) -> None:
        for i in range(0, len(items), 1000):
            client.put_metric_data(Namespace=namespace, MetricData=items[i : i + 1000])

    return put


class Reporter:
    """Sends the tally every interval (`report()` once, for tests and at shutdown)."""

    def __init__(self, config: MetricsConfig, tally: Tally, hostname: str, put: Put | None = None) -> None:
        self.config = config
        self.tally = tally
        self.hostname = hostname
        self._put = put
        self.sent = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def report(self) -> int:
        counts = self.tally.take()
        if not counts:
            return 0
        items = metric_data(counts, self.hostname)
        try:
            if self._put is None:
                self._put = boto3_put(self.config)
            if items:
                self._put(self.config.namespace, items)
        except Exception as exc:  # the service may be away: keep the counts for the next round
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("metrics: PutMetricData to %s failed: %s", self.config.endpoint, self.last_error)
            self.tally.put_back(counts, self.config.max_pending_minutes)
            return 0
        self.last_error = None
        self.sent += len(items)
        return len(items)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="agent-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval):
            self.report()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.report()
