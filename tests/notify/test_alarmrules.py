"""CloudWatch's alarm rules as a pure function, on cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tailrace.notify.alarmrules import ALARM, INSUFFICIENT, OK, Rule, evaluate, evaluation_range
from tailrace.notify.metrics import Bucket, percentile

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def rule(**kw):
    base = dict(
        statistic="Sum",
        period=60,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        threshold=3.0,
        comparison="GreaterThanThreshold",
        treat_missing="missing",
    )
    return Rule(**{**base, **kw})


def series(r, *values):
    starts = evaluation_range(r, NOW)
    assert len(starts) == len(values)
    return list(zip(starts, values, strict=True))


def test_the_range_is_the_last_complete_periods_epoch_aligned():
    r = rule(period=300, evaluation_periods=3)
    assert evaluation_range(r, NOW) == [
        datetime(2026, 3, 1, 11, 45, tzinfo=UTC),
        datetime(2026, 3, 1, 11, 50, tzinfo=UTC),
        datetime(2026, 3, 1, 11, 55, tzinfo=UTC),
    ]


def test_one_breaching_datapoint_with_cloudwatch_wording():
    r = rule()
    e = evaluate(r, series(r, 5.0), OK, NOW)
    assert e.state == ALARM
    assert (
        e.reason
        == "Threshold Crossed: 1 datapoint [5.0 (01/03/26 11:59:00)] was greater than the threshold (3.0)."
    )
    assert e.data["evaluatedDatapoints"] == [{"timestamp": "2026-03-01T11:59:00.000+0000", "value": 5.0}]
    e = evaluate(r, series(r, 1.0), ALARM, NOW)
    assert e.state == OK
    assert e.reason == (
        "Threshold Crossed: 1 datapoint [1.0 (01/03/26 11:59:00)] was not greater than the threshold (3.0)."
    )


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("GreaterThanThreshold", 3.0, OK),
        ("GreaterThanOrEqualToThreshold", 3.0, ALARM),
        ("LessThanThreshold", 3.0, OK),
        ("LessThanOrEqualToThreshold", 3.0, ALARM),
        ("LessThanThreshold", 2.9, ALARM),
        ("GreaterThanThreshold", 3.1, ALARM),
    ],
)
def test_the_four_operators(op, value, expected):
    r = rule(comparison=op)
    assert evaluate(r, series(r, value), OK, NOW).state == expected


def test_m_out_of_n():
    r = rule(evaluation_periods=3, datapoints_to_alarm=2)
    e = evaluate(r, series(r, 5.0, 1.0, 6.0), OK, NOW)
    assert e.state == ALARM
    assert e.reason == (
        "Threshold Crossed: 2 out of the last 3 datapoints [6.0 (01/03/26 11:59:00), 5.0 (01/03/26 11:57:00)] "
        "were greater than the threshold (3.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )
    assert evaluate(r, series(r, 5.0, 1.0, 1.0), ALARM, NOW).state == OK


@pytest.mark.parametrize(
    ("treat", "values", "current", "expected"),
    [
        ("missing", (None, None), OK, INSUFFICIENT),
        ("ignore", (None, None), ALARM, ALARM),
        ("ignore", (None, None), OK, OK),
        ("breaching", (None, None), OK, ALARM),
        ("notBreaching", (None, None), ALARM, OK),
        ("missing", (None, 5.0), OK, ALARM),  # the present datapoint decides
        ("breaching", (None, 1.0), OK, ALARM),  # M=1: the missing one counts as breaching
        ("notBreaching", (None, 5.0), OK, ALARM),
    ],
)
def test_treat_missing_data(treat, values, current, expected):
    r = rule(evaluation_periods=2, datapoints_to_alarm=1, treat_missing=treat)
    assert evaluate(r, series(r, *values), current, NOW).state == expected


def test_insufficient_data_wording():
    r = rule(evaluation_periods=3)
    e = evaluate(r, series(r, None, None, None), OK, NOW)
    assert e.reason == "Insufficient Data: 3 datapoints were unknown."


def test_statistics_and_percentiles():
    b = Bucket()
    for v in range(1, 101):
        b.add(float(v))
    assert b.statistic("SampleCount") == 100
    assert b.statistic("Sum") == 5050
    assert b.statistic("Average") == 50.5
    assert b.statistic("Minimum") == 1 and b.statistic("Maximum") == 100
    assert b.statistic("p99") == 99 and b.statistic("p50") == 50 and b.statistic("p100") == 100
    assert percentile([], 50) is None
    assert Bucket().statistic("Sum") is None


def test_evaluation_is_pure():
    r = rule(evaluation_periods=2)
    values = series(r, 5.0, 6.0)
    assert evaluate(r, values, OK, NOW) == evaluate(r, values, OK, NOW)
    later = NOW + timedelta(minutes=1)
    assert evaluate(r, values, OK, later).data["queryDate"] == "2026-03-01T12:01:30.000+0000"
