"""An alarm's configuration and message: PutMetricAlarm's checks, the rule it evaluates, and the JSON
CloudWatch publishes to the alarm's topics (with the region's long name in the subject)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tailrace.notify import alarmrules as rules
from tailrace.notify.arns import account_for, parse_arn
from tailrace.notify.errors import NotifyError
from tailrace.notify.metrics import InvalidParameterValue, MissingParameter, check_period, check_statistic

MAX_ACTIONS = 5


class AlarmLimitExceeded(NotifyError):
    code = "LimitExceeded"


@functools.cache
def region_name(region: str) -> str:
    """The long name CloudWatch puts in alarm subjects ("US East (N. Virginia)")."""
    import os

    import botocore

    with open(os.path.join(os.path.dirname(botocore.__file__), "data", "endpoints.json")) as f:
        data = json.load(f)
    for partition in data["partitions"]:
        if region in partition["regions"]:
            return str(partition["regions"][region].get("description", region))
    return region


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def check_alarm(owner: str, p: Mapping[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's input, checked and normalised. :raises NotifyError:"""
    name = p.get("AlarmName", "")
    if not name or len(name) > 255:
        raise InvalidParameterValue("AlarmName must be 1-255 characters")
    for key in ("MetricName", "Namespace", "EvaluationPeriods", "Period", "ComparisonOperator"):
        if p.get(key) is None:
            if key in ("MetricName", "Namespace") and p.get("Metrics"):
                raise InvalidParameterValue("metric math alarms (Metrics) are not supported; name one metric")
            raise MissingParameter(f"The parameter {key} is required.")
    if p.get("Threshold") is None:
        raise MissingParameter("The parameter Threshold is required.")
    stat, ext = p.get("Statistic"), p.get("ExtendedStatistic")
    if (stat is None) == (ext is None):
        raise InvalidParameterValue("Exactly one of Statistic and ExtendedStatistic must be given")
    check_statistic(str(stat or ext))
    check_period(int(p["Period"]))
    n = int(p["EvaluationPeriods"])
    m = int(p.get("DatapointsToAlarm") or n)
    if n < 1 or not 1 <= m <= n:
        raise InvalidParameterValue(
            "need EvaluationPeriods >= 1 and 1 <= DatapointsToAlarm <= EvaluationPeriods"
        )
    if n * int(p["Period"]) > 86400 * 7:
        raise InvalidParameterValue("EvaluationPeriods * Period must be at most one week")
    if p["ComparisonOperator"] not in rules.OPERATORS:
        raise InvalidParameterValue(
            f"ComparisonOperator {p['ComparisonOperator']!r}: anomaly-detection operators are not supported; "
            f"use one of {', '.join(rules.OPERATORS)}"
        )
    treat = p.get("TreatMissingData") or "missing"
    if treat not in rules.MISSING:
        raise InvalidParameterValue(f"TreatMissingData {treat!r} is not one of {', '.join(rules.MISSING)}")
    account = account_for(owner)
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        actions = list(p.get(key) or [])
        if len(actions) > MAX_ACTIONS:
            raise AlarmLimitExceeded(f"The maximum number of {key} is {MAX_ACTIONS}")
        for arn in actions:
            try:
                parsed = parse_arn(arn, what=key)
            except NotifyError:
                raise InvalidParameterValue(f"Invalid {key}: {arn[:200]!r} is not an SNS topic ARN")
            if parsed.account != account:
                raise InvalidParameterValue(f"Invalid {key}: {arn} belongs to another account")
    return {
        "AlarmName": name,
        "AlarmDescription": p.get("AlarmDescription"),
        "ActionsEnabled": bool(p.get("ActionsEnabled", True)),
        "OKActions": list(p.get("OKActions") or []),
        "AlarmActions": list(p.get("AlarmActions") or []),
        "InsufficientDataActions": list(p.get("InsufficientDataActions") or []),
        "MetricName": p["MetricName"],
        "Namespace": p["Namespace"],
        "Statistic": stat,
        "ExtendedStatistic": ext,
        "Dimensions": [{"Name": d["Name"], "Value": d["Value"]} for d in p.get("Dimensions") or []],
        "Period": int(p["Period"]),
        "Unit": p.get("Unit"),
        "EvaluationPeriods": n,
        "DatapointsToAlarm": m,
        "Threshold": float(p["Threshold"]),
        "ComparisonOperator": p["ComparisonOperator"],
        "TreatMissingData": treat,
    }


def rule_of(config: Mapping[str, Any]) -> rules.Rule:
    return rules.Rule(
        statistic=config["Statistic"] or config["ExtendedStatistic"],
        period=config["Period"],
        evaluation_periods=config["EvaluationPeriods"],
        datapoints_to_alarm=config["DatapointsToAlarm"],
        threshold=config["Threshold"],
        comparison=config["ComparisonOperator"],
        treat_missing=config["TreatMissingData"],
    )


class InvalidFormat(NotifyError):
    code = "InvalidFormat"


def same_metric(config: Mapping[str, Any], metric: Mapping[str, Any]) -> bool:
    if config["Namespace"] != metric["Namespace"] or config["MetricName"] != metric["MetricName"]:
        return False
    dims = sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions") or [])
    if metric.get("Dimensions") is not None and dims != sorted(
        (d["Name"], d["Value"]) for d in config["Dimensions"]
    ):
        return False
    for key in ("Statistic", "ExtendedStatistic", "Period", "Unit"):
        if metric.get(key) is not None and metric[key] != config.get(key):
            return False
    return True


def alarm_message(
    row: Mapping[str, Any],
    config: Mapping[str, Any],
    old: str,
    new: str,
    reason: str,
    now: datetime,
    arn: str,
) -> str:
    """The JSON CloudWatch publishes to an alarm's topics."""
    ext = config.get("ExtendedStatistic")
    trigger: dict[str, Any] = {
        "MetricName": config["MetricName"],
        "Namespace": config["Namespace"],
        "StatisticType": "ExtendedStatistic" if ext else "Statistic",
        "Statistic": ext if ext else str(config["Statistic"]).upper(),
        "Unit": config.get("Unit"),
        "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in config["Dimensions"]],
        "Period": config["Period"],
        "EvaluationPeriods": config["EvaluationPeriods"],
        "DatapointsToAlarm": config["DatapointsToAlarm"],
        "ComparisonOperator": config["ComparisonOperator"],
        "Threshold": config["Threshold"],
        "TreatMissingData": config["TreatMissingData"],
        "EvaluateLowSampleCountPercentile": "",
    }
    if ext:
        trigger["ExtendedStatistic"] = trigger.pop("Statistic")
    return json.dumps(
        {
            "AlarmName": row["name"],
            "AlarmDescription": config.get("AlarmDescription"),
            "AWSAccountId": account_for(row["owner"]),
            "AlarmConfigurationUpdatedTimestamp": _iso(row["config_updated"]),
            "NewStateValue": new,
            "NewStateReason": reason,
            "StateChangeTime": _iso(now),
            "Region": region_name(row["region"]),
            "AlarmArn": arn,
            "OldStateValue": old,
            "OKActions": config["OKActions"],
            "AlarmActions": config["AlarmActions"],
            "InsufficientDataActions": config["InsufficientDataActions"],
            "Trigger": trigger,
        },
        separators=(",", ":"),
    )
