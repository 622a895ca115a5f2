"""CloudWatch metrics and alarms through unchanged boto3 `cloudwatch` (AWS JSON 1.0) and raw
CBOR and Query requests; alarm evaluation rounds on a frozen clock deliver CloudWatch's message
through a topic to a signature-checking HTTP subscriber."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import cbor2
import pytest
import sqlalchemy as sa
from botocore.config import Config
from botocore.exceptions import ClientError
from subscriber import Subscriber
from test_delivery import World

from tailrace.notify.alarms import AlarmService

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def cw_client(url, key, region="eu-west-1"):
    return boto3.client(
        "cloudwatch",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )


class CwWorld(World):
    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.cw = cw_client(self.server.url, self.key)


@pytest.fixture
def cw_world(tmp_path):
    w = CwWorld(tmp_path)
    yield w
    w.close()


def _put(w, value, minutes_ago, owner="alice", name="5xx"):
    w.metrics.put(
        owner,
        "Web",
        [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "host", "Value": "web-1"}],
                "Value": value,
                "Timestamp": w.clock.now() - timedelta(minutes=minutes_ago),
            }
        ],
    )


def test_alarm_goes_to_alarm_then_ok_and_the_topic_delivers_cloudwatch_messages(cw_world):
    w = cw_world
    with Subscriber() as sub:
        arn, _ = w.subscribed(sub)
        w.cw.put_metric_alarm(
            AlarmName="web-5xx",
            AlarmDescription="5xx burst",
            MetricName="5xx",
            Namespace="Web",
            Dimensions=[{"Name": "host", "Value": "web-1"}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=2,
            DatapointsToAlarm=1,
            Threshold=10,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[arn],
            OKActions=[arn],
        )
        _put(w, 2, minutes_ago=1)
        assert w.alarms.evaluate_due() == 1
        assert w.cw.describe_alarms(AlarmNames=["web-5xx"])["MetricAlarms"][0]["StateValue"] == "OK"
        w.worker.run_once()
        ok_first = sub.of_type("Notification")
        assert [json.loads(m["Message"])["NewStateValue"] for m in ok_first] == ["OK"]  # INSUFFICIENT -> OK

        w.clock.advance(61)  # the next round: one second past the next whole minute
        for _ in range(12):
            _put(w, 1, minutes_ago=1)
        assert w.alarms.evaluate_due() == 1
        w.worker.run_once()
        alarm = sub.of_type("Notification")[-1]
        assert alarm["Subject"] == 'ALARM: "web-5xx" in Europe (Ireland)'
        body = json.loads(alarm["Message"])
        assert (
            body["AlarmName"] == "web-5xx"
            and body["NewStateValue"] == "ALARM"
            and body["OldStateValue"] == "OK"
        )
        assert body["NewStateReason"] == (
            "Threshold Crossed: 1 out of the last 2 datapoints [12.0 (01/03/26 12:00:00)] was greater than or "
            "equal to the threshold (10.0) (minimum 1 datapoint for OK -> ALARM transition)."
        )
        assert body["StateChangeTime"] == "2026-03-01T12:01:01.000+0000"
        assert body["Region"] == "Europe (Ireland)" and body["AlarmDescription"] == "5xx burst"
        assert body["Trigger"]["Statistic"] == "SUM" and body["Trigger"]["StatisticType"] == "Statistic"
        assert body["Trigger"]["Dimensions"] == [{"value": "web-1", "name": "host"}]
        assert body["Trigger"]["Threshold"] == 10.0 and body["Trigger"]["Period"] == 60

        # Still breaching: no transition, no new message.
        w.clock.advance(30)
        for _ in range(12):
            _put(w, 1, minutes_ago=0)
        w.clock.advance(31)
        w.alarms.evaluate_due()
        w.worker.run_once()
        assert len(sub.of_type("Notification")) == 2

        # Quiet minutes: back to OK, and the OK message follows.
        w.clock.advance(180)
        _put(w, 0, minutes_ago=1)
        w.alarms.evaluate_due()
        w.worker.run_once()
        last = json.loads(sub.of_type("Notification")[-1]["Message"])
        assert last["NewStateValue"] == "OK" and last["OldStateValue"] == "ALARM"
        assert sub.rejected == []
        kinds = [
            h["HistoryItemType"]
            for h in w.cw.describe_alarm_history(AlarmName="web-5xx")["AlarmHistoryItems"]
        ]
        assert kinds.count("StateUpdate") == 3 and kinds.count("Action") == 3


def test_actions_disabled_and_set_alarm_state(cw_world):
    w = cw_world
    with Subscriber() as sub:
        arn, _ = w.subscribed(sub)
        w.cw.put_metric_alarm(
            AlarmName="a", MetricName="m", Namespace="Web", Statistic="Maximum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold", AlarmActions=[arn],
        )  # fmt: skip
        w.cw.disable_alarm_actions(AlarmNames=["a"])
        w.cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="drill")
        w.worker.run_once()
        assert sub.of_type("Notification") == []
        assert w.cw.describe_alarms(StateValue="ALARM")["MetricAlarms"][0]["StateReason"] == "drill"
        w.cw.enable_alarm_actions(AlarmNames=["a"])
        w.cw.set_alarm_state(AlarmName="a", StateValue="OK", StateReason="drill over")
        w.cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="drill again")
        w.worker.run_once()
        assert [json.loads(m["Message"])["NewStateReason"] for m in sub.of_type("Notification")] == [
            "drill again"
        ]
        with pytest.raises(ClientError) as err:
            w.cw.set_alarm_state(AlarmName="a", StateValue="OK", StateReason="x", StateReasonData="{bad")
        assert err.value.response["Error"]["Code"] == "InvalidFormat"


def test_one_evaluation_per_alarm_across_processes(cw_world):
    """Two evaluators on one database (two scheduler processes): each alarm is evaluated once per round."""
    w = cw_world
    other = AlarmService(w.store.engine, w.clock, w.metrics, w.topics)
    for i in range(20):
        w.cw.put_metric_alarm(
            AlarmName=f"a{i}", MetricName="m", Namespace="Web", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        )  # fmt: skip
    import threading

    counts = []
    threads = [
        threading.Thread(target=lambda s=s: counts.append(s.evaluate_due())) for s in (w.alarms, other)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 20
    assert w.alarms.evaluate_due() + other.evaluate_due() == 0  # not due again until the next minute
    w.clock.advance(61)
    assert w.alarms.evaluate_due() + other.evaluate_due() == 20


def test_metrics_api_statistics_and_listing(cw_world):
    w = cw_world
    now = w.clock.now().replace(second=0, microsecond=0)
    w.cw.put_metric_data(
        Namespace="Web",
        MetricData=[
            {"MetricName": "latency", "Dimensions": [{"Name": "host", "Value": "a"}], "Values": [1, 2, 3, 4],
             "Counts": [1, 1, 1, 97], "Timestamp": now - timedelta(minutes=3)},
            {"MetricName": "latency", "Dimensions": [{"Name": "host", "Value": "a"}],
             "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6},
             "Timestamp": now - timedelta(minutes=2)},
        ],
    )  # fmt: skip
    out = w.cw.get_metric_statistics(
        Namespace="Web",
        MetricName="latency",
        Dimensions=[{"Name": "host", "Value": "a"}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
        Period=600,
        Statistics=["SampleCount", "Sum", "Maximum"],
        ExtendedStatistics=["p50"],
    )["Datapoints"]
    assert len(out) == 1
    assert (
        out[0]["SampleCount"] == 102 and out[0]["Sum"] == 1 + 2 + 3 + 4 * 97 + 10 and out[0]["Maximum"] == 6
    )
    assert out[0]["ExtendedStatistics"]["p50"] == 4
    data = w.cw.get_metric_data(
        MetricDataQueries=[
            {"Id": "lat", "MetricStat": {"Metric": {"Namespace": "Web", "MetricName": "latency",
             "Dimensions": [{"Name": "host", "Value": "a"}]}, "Period": 60, "Stat": "Minimum"}}
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
        ScanBy="TimestampAscending",
    )["MetricDataResults"][0]  # fmt: skip
    assert data["Values"] == [1.0, 4.0]
    assert [m["MetricName"] for m in w.cw.list_metrics(Namespace="Web")["Metrics"]] == ["latency"]
    assert w.cw.list_metrics(Dimensions=[{"Name": "host", "Value": "b"}])["Metrics"] == []


def test_owners_are_isolated(cw_world):
    w = cw_world
    bob = cw_client(w.server.url, w.keys.create("bob"))
    bob_sns = boto3.client(
        "sns", endpoint_url=w.server.url, region_name="eu-west-1",
        aws_access_key_id=w.keys.list("bob")[0].access_key_id,
        aws_secret_access_key=w.keys.list("bob")[0].secret_access_key,
    )  # fmt: skip
    alice_topic = w.sns.create_topic(Name="mine")["TopicArn"]
    w.cw.put_metric_data(Namespace="Web", MetricData=[{"MetricName": "secret", "Value": 1}])
    w.cw.put_metric_alarm(
        AlarmName="alice-alarm", MetricName="secret", Namespace="Web", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    assert bob.list_metrics()["Metrics"] == []
    assert bob.describe_alarms()["MetricAlarms"] == []
    assert bob.describe_alarm_history()["AlarmHistoryItems"] == []
    for call, code in (
        (lambda: bob.set_alarm_state(AlarmName="alice-alarm", StateValue="ALARM", StateReason="x"), "ResourceNotFound"),
        (lambda: bob.delete_alarms(AlarmNames=["alice-alarm"]), "ResourceNotFound"),
        (
            lambda: bob.put_metric_alarm(
                AlarmName="spy", MetricName="secret", Namespace="Web", Statistic="Sum", Period=60,
                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                AlarmActions=[alice_topic],
            ),
            "InvalidParameterValue",
        ),
    ):  # fmt: skip
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == code
    # Bob's own alarm on the same metric name sees only his (absent) data.
    bob_sns.create_topic(Name="his")
    bob.put_metric_alarm(
        AlarmName="alice-alarm", MetricName="secret", Namespace="Web", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    assert len(w.cw.describe_alarms()["MetricAlarms"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (dict(Statistic="Sum", Period=30), "InvalidParameterValue"),
        (dict(Statistic="Sum", ExtendedStatistic="p99"), "InvalidParameterValue"),
        (dict(ExtendedStatistic="p101"), "InvalidParameterValue"),
        (dict(Statistic="Sum", EvaluationPeriods=2, DatapointsToAlarm=3), "InvalidParameterValue"),
        (dict(Statistic="Sum", TreatMissingData="sometimes"), "InvalidParameterValue"),
        (
            dict(Statistic="Sum", AlarmActions=["arn:aws:sqs:us-east-1:123456789012:q"]),
            "InvalidParameterValue",
        ),
    ],
)
def test_bad_alarms_are_refused(cw_world, kwargs, code):
    base = dict(
        AlarmName="bad", MetricName="m", Namespace="Web", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    with pytest.raises(ClientError) as err:
        cw_world.cw.put_metric_alarm(**{**base, **kwargs})
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _signed(url, key, body: bytes, headers: dict[str, str], path="/"):
    req = botocore.awsrequest.AWSRequest(method="POST", url=url + path, data=body, headers=headers)
    creds = botocore.credentials.Credentials(key.access_key_id, key.secret_access_key)
    botocore.auth.SigV4Auth(creds, "monitoring", "us-east-1").add_auth(req)
    prepared = urllib.request.Request(url + path, data=body, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(prepared) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_cbor_and_query_protocols(cw_world):
    w = cw_world
    path = "/service/GraniteServiceVersion20100801/operation/"
    cbor_headers = {
        "Content-Type": "application/cbor",
        "Accept": "application/cbor",
        "smithy-protocol": "rpc-v2-cbor",
    }
    status, _, _ = _signed(
        w.server.url, w.key,
        cbor2.dumps({"Namespace": "Web", "MetricData": [{"MetricName": "c", "Value": 2.0}]}),
        cbor_headers, path + "PutMetricData",
    )  # fmt: skip
    assert status == 200
    status, headers, body = _signed(w.server.url, w.key, cbor2.dumps({}), cbor_headers, path + "ListMetrics")
    assert status == 200 and headers["smithy-protocol"] == "rpc-v2-cbor"
    assert cbor2.loads(body)["Metrics"][0]["MetricName"] == "c"
    status, headers, body = _signed(
        w.server.url, w.key, cbor2.dumps({"AlarmNames": ["nope"]}), cbor_headers, path + "DeleteAlarms"
    )
    assert status == 404 and headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    status, _, body = _signed(w.server.url, w.key, b"\xff\x00", cbor_headers, path + "ListMetrics")
    assert status == 400
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    status, _, body = _signed(w.server.url, w.key, b"Action=ListMetrics&Version=2010-08-01", form)
    assert status == 200 and b"<MetricName>c</MetricName>" in body
    wrong = type("K", (), {"access_key_id": w.key.access_key_id, "secret_access_key": "wrong"})()
    status, headers, _ = _signed(w.server.url, wrong, cbor2.dumps({}), cbor_headers, path + "ListMetrics")
    assert status == 403


def test_a_round_writes_many_transitions_together_and_skips_alarms_changed_meanwhile(cw_world):
    w = cw_world
    topic = w.sns.create_topic(Name="ops")["TopicArn"]
    common = dict(MetricName="5xx", Namespace="Web", Dimensions=[{"Name": "host", "Value": "web-1"}],
                  Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10,
                  ComparisonOperator="GreaterThanOrEqualToThreshold")  # fmt: skip
    w.cw.put_metric_alarm(AlarmName="acts", AlarmActions=[topic], OKActions=[topic], **common)
    w.cw.put_metric_alarm(AlarmName="changed", **common)
    w.cw.put_metric_alarm(AlarmName="set", **common)
    for i in range(5):
        w.cw.put_metric_alarm(AlarmName=f"plain{i}", **common)
    _put(w, 50, minutes_ago=1)
    claim = w.alarms._claim

    def claim_then_change(now, limit):
        rows = claim(now, limit)  # evaluated from these; meanwhile one is changed, one set by hand
        w.cw.put_metric_alarm(AlarmName="changed", **{**common, "Threshold": 99})
        w.cw.set_alarm_state(AlarmName="set", StateValue="ALARM", StateReason="by hand")
        return rows

    w.alarms._claim = claim_then_change
    assert w.alarms.evaluate_due() == 8
    w.alarms._claim = claim
    states = {a["AlarmName"]: a for a in w.cw.describe_alarms()["MetricAlarms"]}
    assert {n: a["StateValue"] for n, a in states.items()} == {
        "acts": "ALARM", "changed": "INSUFFICIENT_DATA", "set": "ALARM",
        **{f"plain{i}": "ALARM" for i in range(5)},
    }  # fmt: skip
    assert states["set"]["StateReason"].startswith("Threshold Crossed")  # this round's reason
    history = w.cw.describe_alarm_history(AlarmName="acts", ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [h["HistoryItemType"] for h in history] == ["ConfigurationUpdate", "StateUpdate", "Action"]
    assert history[2]["HistorySummary"] == f"Successfully executed action {topic}"
    for name in ("plain0", "plain4"):
        kinds = [
            h["HistoryItemType"] for h in w.cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
        ]
        assert kinds.count("StateUpdate") == 1
    # The round released what it wrote; the changed alarm waits for its lease, as before.
    from tailrace.notify.tables import alarms

    with w.store.engine.connect() as conn:
        leased = [
            r.name for r in conn.execute(sa.select(alarms.c.name).where(alarms.c.lease_until.is_not(None)))
        ]
    assert leased == ["changed"]
    assert w.alarms.evaluate_due() == 0
    w.clock.advance(61)
    assert w.alarms.evaluate_due() == 8
