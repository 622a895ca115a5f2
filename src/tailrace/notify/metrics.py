"""Metrics as CloudWatch keeps them: per owner, namespace, name and dimensions, aggregated into
one-minute buckets (count, sum, min, max and the raw values, bounded, for percentiles), kept for
a retention period. Statistics over any period that is a multiple of a minute come from the
buckets, aligned to the epoch as CloudWatch aligns them."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock
from tailrace.notify.errors import NotifyError
from tailrace.notify.tables import datapoints, meta, metrics, reading
from tailrace.state.engine import create_tables

RETENTION = timedelta(days=15)
MAX_VALUES_PER_MINUTE = 2000
"""Raw values kept per bucket for percentiles; beyond it percentiles are over the first ones."""
MAX_DIMENSIONS = 30
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


class InvalidParameterValue(NotifyError):
    code = "InvalidParameterValue"


class MissingParameter(NotifyError):
    code = "MissingParameter"


def dims_key(dimensions: Iterable[Mapping[str, str]]) -> str:
    pairs = sorted((d["Name"], d["Value"]) for d in dimensions)
    return json.dumps(pairs, separators=(",", ":"))


def minute(when: datetime) -> datetime:
    when = when.astimezone(UTC)
    return when.replace(second=0, microsecond=0)


@dataclass
class Bucket:
    count: float = 0.0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    values: list[float] = field(default_factory=list)

    def add(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        room = MAX_VALUES_PER_MINUTE - len(self.values)
        if room > 0:
            self.values.extend([value] * min(room, max(1, int(count))))

    def merge(self, other: Bucket) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        room = MAX_VALUES_PER_MINUTE - len(self.values)
        if room > 0:
            self.values.extend(other.values[:room])

    def statistic(self, name: str) -> float | None:
        if self.count == 0:
            return None
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.total
        if name == "Average":
            return self.total / self.count
        if name == "Minimum":
            return self.low
        if name == "Maximum":
            return self.high
        if name.startswith("p"):
            return percentile(self.values, float(name[1:]))
        raise InvalidParameterValue(f"unknown statistic {name!r}")


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile (the value at or below which pct% of samples fall)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def check_statistic(name: str) -> str:
    if name in STATISTICS:
        return name
    if name.startswith("p"):
        try:
            pct = float(name[1:])
        except ValueError:
            pct = -1
        if 0 <= pct <= 100:
            return name
    raise InvalidParameterValue(
        f"statistic {name!r} is not one of {', '.join(STATISTICS)} or a percentile pNN (p0 to p100)"
    )


AGENT_NAMESPACE = "Tailrace/Agent"
"""Where `tailrace agent` reports its metrics (agent/cwmetrics.py)."""


class MetricStore:
    def __init__(self, engine: sa.Engine, clock: Clock, *, retention: timedelta = RETENTION) -> None:
        self.engine = engine
        self.clock = clock
        self.retention = retention
        create_tables(meta, engine)

    def put(self, owner: str, namespace: str, data: Sequence[Mapping[str, Any]]) -> int:
        """PutMetricData. Returns the number of values stored. :raises InvalidParameterValue:"""
        with self.engine.begin() as conn:
            return self.put_in(conn, owner, namespace, data)

    def put_in(
        self,
        conn: sa.Connection,
        owner: str,
        namespace: str,
        data: Sequence[Mapping[str, Any]],
        *,
        builtin: bool = False,
    ) -> int:
        """`put` inside the caller's transaction; `builtin` allows the service's own namespaces."""
        # Tailrace/Agent is written by the owner's own agents, with the owner's key.
        reserved = (
            namespace.startswith(("AWS/", "Tailrace/")) and namespace != AGENT_NAMESPACE and not builtin
        )
        if not namespace or reserved or len(namespace) > 255:
            raise InvalidParameterValue(
                f"The value {namespace!r} for parameter Namespace is invalid (AWS/ and Tailrace/ are reserved, "
                f"but for {AGENT_NAMESPACE})"
            )
        now = self.clock.now()
        buckets: dict[tuple[str, str, datetime], tuple[list[dict[str, str]], str | None, Bucket]] = {}
        stored = 0
        for i, datum in enumerate(data, start=1):
            where = f"MetricData.member.{i}"
            name = datum.get("MetricName")
            if not name:
                raise MissingParameter(f"The parameter {where}.MetricName is required.")
            dims = list(datum.get("Dimensions") or [])
            if len(dims) > MAX_DIMENSIONS:
                raise InvalidParameterValue(f"{where}.Dimensions: at most {MAX_DIMENSIONS} dimensions")
            when = datum.get("Timestamp") or now
            if when < now - timedelta(days=14) or when > now + timedelta(hours=2):
                raise InvalidParameterValue(
                    f"The parameter {where}.Timestamp must be within the last two weeks and no more than two "
                    "hours in the future"
                )
            key = (name, dims_key(dims), minute(when))
            entry = buckets.setdefault(key, (dims, datum.get("Unit"), Bucket()))
            bucket = entry[2]
            sets = [k for k in ("Value", "StatisticValues", "Values") if datum.get(k) is not None]
            if len(sets) != 1:
                raise InvalidParameterValue(f"{where}: give exactly one of Value, StatisticValues or Values")
            if "Value" in sets:
                bucket.add(_finite(datum["Value"], f"{where}.Value"))
                stored += 1
            elif "Values" in sets:
                values = datum["Values"]
                counts = datum.get("Counts") or [1.0] * len(values)
                if len(counts) != len(values):
                    raise InvalidParameterValue(f"{where}: Values and Counts must have the same length")
                for v, c in zip(values, counts, strict=True):
                    bucket.add(_finite(v, f"{where}.Values"), _finite(c, f"{where}.Counts"))
                    stored += 1
            else:
                s = datum["StatisticValues"]
                other = Bucket(count=s["SampleCount"], total=s["Sum"], low=s["Minimum"], high=s["Maximum"])
                if other.count <= 0 or other.low > other.high:
                    raise InvalidParameterValue(
                        f"{where}.StatisticValues: SampleCount > 0 and Minimum <= Maximum"
                    )
                bucket.merge(other)
                stored += 1
        for (name, dkey, at), (dims, unit, bucket) in buckets.items():
            metric_id = self._metric_id(conn, owner, namespace, name, dkey, dims, unit, now)
            self._merge(conn, metric_id, at, bucket)
        return stored

    def _metric_id(
        self,
        conn: sa.Connection,
        owner: str,
        namespace: str,
        name: str,
        dkey: str,
        dims: list[dict[str, str]],
        unit: str | None,
        now: datetime,
    ) -> int:
        where = (
            metrics.c.owner == owner,
            metrics.c.namespace == namespace,
            metrics.c.name == name,
            metrics.c.dims_key == dkey,
        )
        found = conn.execute(sa.select(metrics.c.id, metrics.c.last_put).where(*where)).first()
        if found is not None:
            last = found[1] if found[1].tzinfo else found[1].replace(tzinfo=UTC)
            if now - last > timedelta(minutes=1):  # ListMetrics' recency, refreshed at most once a minute
                conn.execute(metrics.update().where(metrics.c.id == found[0]).values(last_put=now))
            return int(found[0])
        result = conn.execute(
            metrics.insert().values(
                owner=owner,
                namespace=namespace,
                name=name,
                dims_key=dkey,
                unit=unit,
                last_put=now,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _merge(self, conn: sa.Connection, metric_id: int, at: datetime, bucket: Bucket) -> None:
        row = (
            conn.execute(
                sa.select(datapoints).where(datapoints.c.metric_id == metric_id, datapoints.c.minute == at)
            )
            .mappings()
            .first()
        )
        if row is not None:
            merged = _bucket_of(row)
            merged.merge(bucket)
            conn.execute(
                datapoints.update()
                .where(datapoints.c.metric_id == metric_id, datapoints.c.minute == at)
                .values(**_columns(merged))
            )
        else:
            conn.execute(datapoints.insert().values(metric_id=metric_id, minute=at, **_columns(bucket)))

    def find_metric(
        self, owner: str, namespace: str, name: str, dimensions: Iterable[Mapping[str, str]]
    ) -> int | None:
        with reading(self.engine) as conn:
            return conn.execute(
                sa.select(metrics.c.id).where(
                    metrics.c.owner == owner,
                    metrics.c.namespace == namespace,
                    metrics.c.name == name,
                    metrics.c.dims_key == dims_key(dimensions),
                )
            ).scalar()

    def buckets(
        self, metric_id: int | None, start: datetime, end: datetime, period: int
    ) -> dict[datetime, Bucket]:
        """Minute buckets in [start, end) grouped into periods aligned to the epoch."""
        if metric_id is None:
            return {}
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(datapoints).where(
                    datapoints.c.metric_id == metric_id,
                    datapoints.c.minute >= minute(start),
                    datapoints.c.minute < end,
                )
            ).mappings()
            out: dict[datetime, Bucket] = {}
            for row in rows:
                at = row["minute"]
                at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
                if at < start:
                    continue
                slot = datetime.fromtimestamp(int(at.timestamp()) // period * period, UTC)
                out.setdefault(slot, Bucket()).merge(_bucket_of(row))
        return out

    def statistics(
        self,
        owner: str,
        namespace: str,
        name: str,
        dimensions: Iterable[Mapping[str, str]],
        start: datetime,
        end: datetime,
        period: int,
        stats: Sequence[str],
    ) -> list[tuple[datetime, dict[str, float | None]]]:
        check_period(period)
        for s in stats:
            check_statistic(s)
        if end <= start:
            raise InvalidParameterValue("The parameter StartTime must be before EndTime.")
        if (end - start).total_seconds() / period > 1440:
            raise InvalidParameterValue(
                "You have requested up to more than 1,440 datapoints; make the time range shorter or the period longer."
            )
        found = self.buckets(self.find_metric(owner, namespace, name, dimensions), start, end, period)
        return [(at, {s: b.statistic(s) for s in stats}) for at, b in sorted(found.items())]

    def list_metrics(
        self,
        owner: str,
        namespace: str | None = None,
        name: str | None = None,
        dimension_filters: Sequence[Mapping[str, str]] = (),
        *,
        after: int = 0,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(metrics).where(metrics.c.owner == owner, metrics.c.id > after).order_by(metrics.c.id)
        )
        if namespace:
            query = query.where(metrics.c.namespace == namespace)
        if name:
            query = query.where(metrics.c.name == name)
        out = []
        with reading(self.engine) as conn:
            for row in conn.execute(query).mappings():
                dims = dict(json.loads(row["dims_key"]))
                if all(
                    f["Name"] in dims and (f.get("Value") is None or dims[f["Name"]] == f["Value"])
                    for f in dimension_filters
                ):
                    out.append(
                        {
                            "id": row["id"],
                            "Namespace": row["namespace"],
                            "MetricName": row["name"],
                            "Dimensions": [{"Name": k, "Value": v} for k, v in json.loads(row["dims_key"])],
                        }
                    )
                    if len(out) >= limit:
                        break
        return out

    def expire(self) -> int:
        """Drop buckets older than the retention; returns how many."""
        cutoff = self.clock.now() - self.retention
        with self.engine.begin() as conn:
            return int(conn.execute(datapoints.delete().where(datapoints.c.minute < cutoff)).rowcount or 0)


def check_period(period: int) -> int:
    if period < 60 or period % 60:
        raise InvalidParameterValue(
            f"The parameter Period must be a multiple of 60 seconds (one-minute resolution); got {period}"
        )
    return period


def _finite(value: Any, where: str) -> float:
    v = float(value)
    if not math.isfinite(v) or abs(v) > 2**360:
        raise InvalidParameterValue(
            f"The value {value!r} for parameter {where} is not a finite number in range"
        )
    return v


def _columns(b: Bucket) -> dict[str, Any]:
    return {
        "sample_count": b.count,
        "sum": b.total,
        "minimum": b.low,
        "maximum": b.high,
        "samples": json.dumps(b.values[:MAX_VALUES_PER_MINUTE]),
    }


def _bucket_of(row: Mapping[Any, Any]) -> Bucket:
    return Bucket(
        count=row["sample_count"],
        total=row["sum"],
        low=row["minimum"],
        high=row["maximum"],
        values=list(json.loads(row["samples"])),
    )
