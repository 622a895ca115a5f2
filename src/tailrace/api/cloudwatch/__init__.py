"""The CloudWatch API subset (2010-08-01): metrics and metric alarms. Served in the Query protocol
at POST / (queryapp.py, `Version=2010-08-01`) and in Smithy RPC v2 CBOR at
`/service/GraniteServiceVersion20100801/operation/<Action>` (cbor.py), which is what current
boto3 and the AWS CLI send. Both parse with the installed botocore's `cloudwatch` model and
call the same handlers below."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tailrace.notify.alarms import AlarmService
from tailrace.notify.errors import NotifyError
from tailrace.notify.metrics import InvalidParameterValue, MetricStore
from tailrace.notify.topics import Scope

SERVICE = "cloudwatch"
VERSION = "2010-08-01"
SIGNING_NAME = "monitoring"
NAMESPACE = "http://monitoring.amazonaws.com/doc/2010-08-01/"
PAGE = 500

Handler = Callable[["CloudWatchApi", Scope, dict[str, Any]], Mapping[str, Any] | None]


class InvalidNextToken(NotifyError):
    code = "InvalidNextToken"


def _next(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidNextToken("The NextToken is not one this service issued")
    return int(token)


def _put_metric_data(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> None:
    data = list(p.get("MetricData") or [])
    for entity in p.get("EntityMetricData") or []:
        data.extend(entity.get("MetricData") or [])
    if not data:
        raise InvalidParameterValue("The parameter MetricData is required.")
    if len(data) > 1000:
        raise InvalidParameterValue("MetricData: at most 1000 items per call")
    api.metrics.put(scope.owner_for_new, p["Namespace"], data)


def _get_metric_statistics(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
    basic = list(p.get("Statistics") or [])
    ext = list(p.get("ExtendedStatistics") or [])
    if not basic and not ext:
        raise InvalidParameterValue("Either Statistics or ExtendedStatistics must be given")
    rows = api.metrics.statistics(
        scope.owner_for_new,
        p["Namespace"],
        p["MetricName"],
        p.get("Dimensions") or [],
        p["StartTime"],
        p["EndTime"],
        p["Period"],
        basic + ext,
    )
    points = []
    for at, values in rows:
        point: dict[str, Any] = {"Timestamp": at, "Unit": p.get("Unit") or "None"}
        point.update({s: values[s] for s in basic})
        if ext:
            point["ExtendedStatistics"] = {s: values[s] for s in ext if values[s] is not None}
        points.append(point)
    return {"Label": p["MetricName"], "Datapoints": points}


def _get_metric_data(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
    results = []
    descending = p.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    for q in p["MetricDataQueries"]:
        stat = q.get("MetricStat")
        if stat is None:
            raise InvalidParameterValue(
                f"MetricDataQuery {q['Id']}: metric math (Expression) is not supported"
            )
        metric = stat["Metric"]
        rows = api.metrics.statistics(
            scope.owner_for_new,
            metric.get("Namespace", ""),
            metric.get("MetricName", ""),
            metric.get("Dimensions") or [],
            p["StartTime"],
            p["EndTime"],
            stat["Period"],
            [stat["Stat"]],
        )
        points = [(at, v[stat["Stat"]]) for at, v in rows if v[stat["Stat"]] is not None]
        if descending:
            points.reverse()
        if q.get("ReturnData", True):
            results.append(
                {
                    "Id": q["Id"],
                    "Label": q.get("Label") or metric.get("MetricName"),
                    "Timestamps": [at for at, _ in points],
                    "Values": [v for _, v in points],
                    "StatusCode": "Complete",
                }
            )
    return {"MetricDataResults": results, "Messages": []}


def _list_metrics(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
    found = api.metrics.list_metrics(
        scope.owner_for_new,
        p.get("Namespace"),
        p.get("MetricName"),
        p.get("Dimensions") or [],
        after=_next(p.get("NextToken")),
        limit=PAGE + 1,
    )
    more = len(found) > PAGE
    found = found[:PAGE]
    return {
        "Metrics": [{k: v for k, v in m.items() if k != "id"} for m in found],
        "NextToken": str(found[-1]["id"]) if more else None,
    }


def _put_metric_alarm(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> None:
    api.alarms.put(scope.owner_for_new, scope.region, p)


def _describe_alarms(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
    types = p.get("AlarmTypes") or ["MetricAlarm"]
    found: list[dict[str, Any]] = []
    if "MetricAlarm" in types:
        found = api.alarms.describe(
            scope.owner_for_new,
            names=p.get("AlarmNames") or (),
            prefix=p.get("AlarmNamePrefix"),
            state=p.get("StateValue"),
            action_prefix=p.get("ActionPrefix"),
        )
    start = _next(p.get("NextToken"))
    size = int(p.get("MaxRecords") or 50)
    if not 1 <= size <= 100:
        raise InvalidParameterValue("MaxRecords must be between 1 and 100")
    page = found[start : start + size]
    more = start + size < len(found)
    return {"MetricAlarms": page, "CompositeAlarms": [], "NextToken": str(start + size) if more else None}


def _describe_for_metric(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
    return {"MetricAlarms": api.alarms.describe(scope.owner_for_new, metric=p)}


def _delete_alarms(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> None:
    api.alarms.delete(scope.owner_for_new, p["AlarmNames"])


def _set_alarm_state(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> None:
    api.alarms.set_state(
        scope.owner_for_new, p["AlarmName"], p["StateValue"], p["StateReason"], p.get("StateReasonData")
    )


def _history(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> dict[str, Any]:
    start = _next(p.get("NextToken"))
    size = int(p.get("MaxRecords") or 100)
    items = api.alarms.history(
        scope.owner_for_new,
        name=p.get("AlarmName"),
        kind=p.get("HistoryItemType"),
        start=p.get("StartDate"),
        end=p.get("EndDate"),
        limit=start + size + 1,
        ascending=p.get("ScanBy") == "TimestampAscending",
    )
    page = items[start : start + size]
    return {"AlarmHistoryItems": page, "NextToken": str(start + size) if len(items) > start + size else None}


def _enable(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> None:
    api.alarms.set_actions_enabled(scope.owner_for_new, p["AlarmNames"], True)


def _disable(api: CloudWatchApi, scope: Scope, p: dict[str, Any]) -> None:
    api.alarms.set_actions_enabled(scope.owner_for_new, p["AlarmNames"], False)


ACTIONS: dict[str, Handler] = {
    "PutMetricData": _put_metric_data,
    "GetMetricStatistics": _get_metric_statistics,
    "GetMetricData": _get_metric_data,
    "ListMetrics": _list_metrics,
    "PutMetricAlarm": _put_metric_alarm,
    "DescribeAlarms": _describe_alarms,
    "DescribeAlarmsForMetric": _describe_for_metric,
    "DeleteAlarms": _delete_alarms,
    "SetAlarmState": _set_alarm_state,
    "DescribeAlarmHistory": _history,
    "EnableAlarmActions": _enable,
    "DisableAlarmActions": _disable,
}


class CloudWatchApi:
    service = SERVICE
    version = VERSION
    signing_name = SIGNING_NAME
    namespace = NAMESPACE
    actions = ACTIONS

    def __init__(self, metrics: MetricStore, alarms: AlarmService) -> None:
        self.metrics = metrics
        self.alarms = alarms

    def handle(
        self, action: str, scope: Scope, params: dict[str, Any], base_url: str
    ) -> Mapping[str, Any] | None:
        return ACTIONS[action](self, scope, params)
