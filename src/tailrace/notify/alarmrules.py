"""Metric alarm evaluation with CloudWatch's rules, as a pure function of the alarm, the values of
its most recent periods and its current state.

The evaluation range is the last EvaluationPeriods complete periods. A value breaches when it
compares to the Threshold as the ComparisonOperator says. The alarm goes to ALARM when at least
DatapointsToAlarm (M) of those N periods breach; to OK otherwise. Periods with no data follow
TreatMissingData: `breaching` / `notBreaching` count them as such; `ignore` leaves them out (no
data at all keeps the current state); `missing` (the default) leaves them out too, but with no
data at all the state becomes INSUFFICIENT_DATA.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT = "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT)
OPERATORS = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
MISSING = ("missing", "breaching", "notBreaching", "ignore")


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str = "missing"


@dataclass(frozen=True, kw_only=True, slots=True)
class Evaluation:
    state: str
    reason: str
    data: dict[str, Any]


def evaluation_range(rule: Rule, now: datetime) -> list[datetime]:
    """Start times of the N most recent complete periods, oldest first (epoch-aligned)."""
    end = int(now.timestamp()) // rule.period * rule.period
    return [datetime.fromtimestamp(end - k * rule.period, UTC) for k in range(rule.evaluation_periods, 0, -1)]


def _num(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(v)


# A round evaluates thousands of alarms over the same few period starts: their texts once each.
@functools.lru_cache(maxsize=4096)
def _when(at: datetime) -> str:
    return at.strftime("%d/%m/%y %H:%M:%S")


@functools.lru_cache(maxsize=4096)
def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def evaluate(
    rule: Rule, values: Sequence[tuple[datetime, float | None]], current: str, now: datetime
) -> Evaluation:
    """The alarm's state after looking at `values` (the evaluation range, oldest first)."""
    words, breaches = OPERATORS[rule.comparison]
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    present = [(at, v) for at, v in values if v is not None]
    missing = len(values) - len(present)
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(values[0][0]) if values else _iso(now),
        "statistic": rule.statistic,
        "period": rule.period,
        "recentDatapoints": [v for _, v in present],
        "threshold": rule.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(at), "value": v} for at, v in reversed(values) if v is not None
        ],
    }
    if not present and rule.treat_missing in ("missing", "ignore"):
        if rule.treat_missing == "ignore":
            return Evaluation(
                state=current, reason=f"Unchecked: {_plural(missing, 'datapoint')} unknown.", data=data
            )
        reason = (
            f"Insufficient Data: {_plural(missing, 'datapoint')} {'was' if missing == 1 else 'were'} unknown."
        )
        return Evaluation(state=INSUFFICIENT, reason=reason, data=data)
    breaching = [(at, v) for at, v in present if breaches(v, rule.threshold)]
    fine = [(at, v) for at, v in present if not breaches(v, rule.threshold)]
    bad_count, good_count = len(breaching), len(fine)
    if rule.treat_missing == "breaching":
        bad_count += missing
    elif rule.treat_missing == "notBreaching":
        good_count += missing
    state = ALARM if bad_count >= m else OK
    shown = breaching if state == ALARM else fine
    listed = ", ".join(f"{_num(v)} ({_when(at)})" for at, v in reversed(shown))
    count = bad_count if state == ALARM else good_count
    neg = "" if state == ALARM else "not "
    if n == 1:
        if not shown:
            what = "missing datapoint" if missing else "datapoint"
            reason = f"Threshold Crossed: no datapoints were received for 1 period and 1 {what} was treated as [{'Breaching' if state == ALARM else 'NonBreaching'}]."
        else:
            reason = f"Threshold Crossed: 1 datapoint [{listed}] was {neg}{words} the threshold ({_num(rule.threshold)})."
    else:
        transition = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
        need = m if state == ALARM else n - m + 1
        treated = ""
        if missing and rule.treat_missing in ("breaching", "notBreaching"):
            treated = f" and {_plural(missing, 'missing datapoint')} treated as [{'Breaching' if rule.treat_missing == 'breaching' else 'NonBreaching'}]"
        reason = (
            f"Threshold Crossed: {count} out of the last {n} datapoints [{listed}]{treated} "
            f"{'was' if count == 1 else 'were'} {neg}{words} the threshold ({_num(rule.threshold)}) "
            f"(minimum {_plural(need, 'datapoint')} for {transition} transition)."
        )
    return Evaluation(state=state, reason=reason, data=data)


def next_evaluation(rule: Rule, now: datetime, interval: int = 60) -> datetime:
    """When to evaluate next: at the next whole `interval` (a minute), so a new period is seen
    as soon as it completes."""
    step = min(interval, rule.period)
    return datetime.fromtimestamp((int(now.timestamp()) // step + 1) * step, UTC) + timedelta(seconds=1)
