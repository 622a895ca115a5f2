"""Issue 16's acceptance, end to end, on a frozen clock (no sleeping, no wall-clock assertion):

- the agent tails an access log in which 5xx responses jump and reports its per-minute metrics
  with PutMetricData (unchanged boto3, its owner's key) to the service;
- an alarm on the 5xx metric goes to ALARM within two evaluation periods of the jump;
- its topic delivers to an HTTP subscriber that confirmed its subscription and verifies each
  signature with the certificate from SigningCertURL, to a Redis channel and to the store;
- the 5xx drop, the alarm returns to OK and the OK message follows on all three;
- a failing HiveActivity with onFail -> SnsAlarm is delivered the same way.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import redis
from notify_helpers import sns_client
from subscriber import Subscriber, verify
from test_channels import REDIS_URL, World

from tailrace.agent.configfile import parse_config
from tailrace.agent.core import Agent
from tailrace.clock import FrozenClock
from tailrace.events.model import ActionFailed
from tailrace.notify.pipelinealarms import SnsAlarmRelay, topic_check
from tailrace.sample.accesslog import Hit, combined_line

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""The first minute of the log; the clock starts there."""
HOST = "web-7"


def _line(at: datetime, code: int, i: int) -> str:
    hit = Hit(
        time=at,
        host=f"10.0.0.{i % 250}",
        user="-",
        method="GET",
        path=f"/item/{i}",
        code=str(code),
        size="512",
        referer="-",
        agent="curl/8",
    )
    return combined_line(hit)


def _minute(log, start: datetime, ok: int, errors: int) -> None:
    with log.open("a") as fh:
        for i in range(ok + errors):
            at = start + timedelta(seconds=i * 50 / (ok + errors))
            fh.write(_line(at, 503 if i < errors else 200, i) + "\n")


class Fleet:
    """The agent on web-7, the service (World), and the three subscribers of topic web-alarms."""

    def __init__(self, tmp_path) -> None:
        self.w = World(tmp_path / "svc", at=T0)
        self.log = tmp_path / "access_log"
        self.log.touch()
        state = tmp_path / "agent"
        config = parse_config(
            {
                "source": [
                    {
                        "type": "tail",
                        "path": str(self.log),
                        "pos_file": str(state / "access.pos"),
                        "format": "apache2",
                        "tag": "apache.access",
                        "read_from_head": True,
                        "id": "web-access",
                    }
                ],
                "match": [
                    {
                        "pattern": "apache.*",
                        "type": "store",
                        "path": "s3://alice-weblogs/raw/",
                        "buffer_path": str(state / "buffer"),
                        "flush_mode": "interval",
                        "flush_interval": "5s",
                    }
                ],
                "system": {"state_dir": str(state)},
                "metrics": {
                    "endpoint": self.w.server.url,
                    "aws_key_id": self.w.alice.access_key_id,
                    "aws_sec_key": self.w.alice.secret_access_key,
                    "interval": "60s",
                },
            },
            origin="agent.toml",
            home=tmp_path / "agent-home",
            hostname=HOST,
        )
        self.agent = Agent(config, storage=self.w.storage, clock=self.w.clock)

    def ship(self) -> None:
        """One agent round: read, commit, ship, report (what its threads do each interval)."""
        for _ in range(20):
            if not self.agent.step():
                break
        self.agent.seal_all()
        self.agent.flush(force=True)
        assert self.agent.reporter is not None
        self.agent.reporter.report()
        assert self.agent.reporter.last_error is None

    def close(self) -> None:
        if self.agent.started:
            self.agent.shutdown(5)
        self.w.close()


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path)
    yield f
    f.close()


def _subscribe_all(w, sub: Subscriber, channel: str, bucket: str) -> str:
    arn = w.sns.create_topic(Name="web-alarms")["TopicArn"]
    w.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=sub.url)
    w.sns.subscribe(TopicArn=arn, Protocol="redis", Endpoint=f"{REDIS_URL}#{channel}")
    w.sns.subscribe(TopicArn=arn, Protocol="store", Endpoint=f"s3://{bucket}/sns/")
    assert w.worker.run_once() == 1  # the HTTP confirmation; the subscriber fetches SubscribeURL
    subs = w.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert all(s["SubscriptionArn"].startswith(arn + ":") for s in subs), subs  # all confirmed
    return arn


def _redis_messages(listener) -> list[dict]:
    out = []
    while (got := listener.get_message(timeout=2)) is not None:
        if got["type"] == "message":
            out.append(json.loads(got["data"]))
    return out


def _stored(w, bucket: str) -> list[dict]:
    view = w.storage.for_owner("alice")
    return [
        json.loads(view.read_bytes(f"s3://{bucket}/{i.key}")) for i in view.list_files(f"s3://{bucket}/sns/")
    ]


def test_5xx_jump_alarm_ok_delivered_to_http_redis_and_store(fleet):
    w = fleet.w
    channel = f"dash-{uuid.uuid4().hex[:8]}"
    bucket = f"alice-alarms-{uuid.uuid4().hex[:6]}"
    listener = redis.Redis.from_url(REDIS_URL).pubsub()
    listener.subscribe(channel)
    listener.get_message(timeout=5)
    with Subscriber() as sub:
        arn = _subscribe_all(w, sub, channel, bucket)
        cw = _cloudwatch(w)
        cw.put_metric_alarm(
            AlarmName="web-5xx",
            Namespace="Tailrace/Agent",
            MetricName="HTTPCode_5XX_Count",
            Dimensions=[{"Name": "Source", "Value": "web-access"}, {"Name": "Host", "Value": HOST}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=2,
            DatapointsToAlarm=1,
            Threshold=20,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[arn],
            OKActions=[arn],
        )

        def minute(n: int, ok: int, errors: int) -> str:
            """Minute n of traffic is written and shipped; one second past its end the alarms
            are evaluated (as the service's loop does) and the deliveries sent."""
            _minute(fleet.log, T0 + timedelta(minutes=n), ok, errors)
            w.clock.set(T0 + timedelta(minutes=n + 1, seconds=1))
            fleet.ship()
            w.alarms.evaluate_due()
            w.worker.run_once()
            return cw.describe_alarms(AlarmNames=["web-5xx"])["MetricAlarms"][0]["StateValue"]

        assert minute(0, 120, 1) == "OK"
        assert minute(1, 118, 2) == "OK"
        # The 5xx jump starts in minute 2: ALARM at the first evaluation after it (within two).
        assert minute(2, 60, 55) == "ALARM"
        assert minute(3, 70, 50) == "ALARM"  # still breaching: no transition, no message
        assert minute(4, 130, 0) == "ALARM"  # minute 3 is still among the last two periods
        assert minute(5, 125, 1) == "OK"
        assert minute(6, 125, 0) == "OK"  # no transition: no message

        # The agent's own figures, as CloudWatch returns them.
        stats = cw.get_metric_statistics(
            Namespace="Tailrace/Agent",
            MetricName="HTTPCode_5XX_Count",
            Dimensions=[{"Name": "Source", "Value": "web-access"}, {"Name": "Host", "Value": HOST}],
            StartTime=T0,
            EndTime=T0 + timedelta(minutes=7),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        by_minute = {p["Timestamp"].astimezone(UTC): p["Sum"] for p in stats}
        assert by_minute[T0 + timedelta(minutes=2)] == 55 and by_minute[T0] == 1
        requests = cw.get_metric_statistics(
            Namespace="Tailrace/Agent",
            MetricName="RequestCount",
            Dimensions=[{"Name": "Source", "Value": "web-access"}],
            StartTime=T0,
            EndTime=T0 + timedelta(minutes=7),
            Period=420,
            Statistics=["Sum"],
        )["Datapoints"]
        assert requests[0]["Sum"] == 121 + 120 + 115 + 120 + 130 + 126 + 125 and len(requests) == 1

        # HTTP: verified signatures, ALARM then OK, each once.
        notes = sub.of_type("Notification")
        assert sub.rejected == []
        states = [json.loads(m["Message"])["NewStateValue"] for m in notes]
        # INSUFFICIENT_DATA -> OK at the first evaluation (OKActions run on it, as in CloudWatch),
        # OK -> ALARM at the jump, ALARM -> OK when the 5xx drop.
        assert states == ["OK", "ALARM", "OK"], states
        assert json.loads(notes[2]["Message"])["OldStateValue"] == "ALARM"
        assert notes[1]["Subject"] == 'ALARM: "web-5xx" in US East (N. Virginia)'
        body = json.loads(notes[1]["Message"])
        assert body["Trigger"]["MetricName"] == "HTTPCode_5XX_Count"
        assert sorted((d["name"], d["value"]) for d in body["Trigger"]["Dimensions"]) == [
            ("Host", HOST),
            ("Source", "web-access"),
        ]

        # Redis: the same two messages, signed.
        got = _redis_messages(listener)
        assert [json.loads(m["Message"])["NewStateValue"] for m in got] == ["OK", "ALARM", "OK"]
        for m in got:
            verify(m)
        assert [m["MessageId"] for m in got] == [m["MessageId"] for m in notes]

        # The store: one object per message, under the date of the message.
        stored = sorted(_stored(w, bucket), key=lambda d: d["Timestamp"])
        assert [d["MessageId"] for d in stored] == [m["MessageId"] for m in notes]
        for d in stored:
            verify(d)
    listener.close()


def _cloudwatch(w):
    from botocore.config import Config

    return boto3.client(
        "cloudwatch",
        endpoint_url=w.server.url,
        region_name="us-east-1",
        aws_access_key_id=w.alice.access_key_id,
        aws_secret_access_key=w.alice.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )


def test_agent_metrics_need_the_owners_key(fleet):
    """Another owner's key cannot put into alice's metrics: metrics are per owner."""
    w = fleet.w
    bob_cw = boto3.client(
        "cloudwatch",
        endpoint_url=w.server.url,
        region_name="us-east-1",
        aws_access_key_id=w.bob.access_key_id,
        aws_secret_access_key=w.bob.secret_access_key,
    )
    _minute(fleet.log, T0, 10, 10)
    w.clock.set(T0 + timedelta(minutes=1, seconds=1))
    fleet.ship()
    assert bob_cw.list_metrics(Namespace="Tailrace/Agent")["Metrics"] == []
    alice = _cloudwatch(w).list_metrics(Namespace="Tailrace/Agent")["Metrics"]
    assert {m["MetricName"] for m in alice} >= {"RequestCount", "HTTPCode_5XX_Count", "LinesShipped"}


# --- a failing HiveActivity with onFail -> SnsAlarm ------------------------------------------------


def test_failing_hive_activity_onfail_snsalarm_delivers_the_same_way(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
    from service_harness import Harness, definition
    from test_control import Running
    from test_processes import wait_until

    from tailrace.definition import from_file_dict
    from tailrace.state import Status

    w = World(tmp_path / "svc")
    h = Harness(
        store=w.store, home=tmp_path / "home", clock=FrozenClock(datetime(2024, 3, 3, 12, tzinfo=UTC))
    )
    h.service.transitions.topic_check = topic_check(w.topics)
    relay = SnsAlarmRelay(w.store.engine, w.topics)
    channel = f"hive-{uuid.uuid4().hex[:8]}"
    bucket = f"alice-hive-{uuid.uuid4().hex[:6]}"
    listener = redis.Redis.from_url(REDIS_URL).pubsub()
    listener.subscribe(channel)
    listener.get_message(timeout=5)
    try:
        with Subscriber() as sub:
            arn = _subscribe_all(w, sub, channel, bucket)
            alarm = {
                "id": "FailureAlarm",
                "type": "SnsAlarm",
                "topicArn": arn,
                "role": "DataPipelineDefaultRole",
                "subject": "Failed: #{node.name}",
                "message": "#{node.name} scheduled #{node.@scheduledStartTime} failed",
            }
            hive = {
                "id": "Query",
                "type": "HiveActivity",
                "hiveScript": "SELECT * FROM no_such_table_anywhere;",
                "stage": "false",
                "maximumRetries": "0",
                "onFail": {"ref": "FailureAlarm"},
            }
            pid = h.service.create_pipeline("etl", "u-etl", owner="alice")
            report = h.service.put_definition(
                pid, from_file_dict(definition(hive, alarm, start="2024-03-03T00:00:00"))
            )
            assert not report.errored and report.warnings == []  # the topic exists
            h.service.activate(pid)
            h.tick()
            runner = Running(h, tmp_path)
            try:
                wait_until(
                    lambda: any(s == "FAILED" for s in h.statuses(pid).values()),
                    timeout=120,
                    what="the Hive query to fail",
                )
            finally:
                runner.close()
            assert relay.run_once() == 1
            w.worker.run_once()
            (note,) = sub.of_type("Notification")
            assert note["Subject"] == "Failed: Query" and note["Message"].endswith("failed")
            assert note["Message"].startswith("Query scheduled 2024-03-03T00:00:00")
            assert sub.rejected == []
            (on_redis,) = _redis_messages(listener)
            verify(on_redis)
            assert on_redis["MessageId"] == note["MessageId"]
            (stored,) = _stored(w, bucket)
            assert stored["MessageId"] == note["MessageId"]
            assert Status.FAILED.value in h.statuses(pid).values()
    finally:
        listener.close()
        w.close()


# --- a topicArn that names no topic --------------------------------------------------------------


def test_missing_topic_is_a_warning_at_put_and_an_actions_log_error_when_firing(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
    from service_harness import Harness, definition, shell

    from tailrace.definition import from_file_dict

    w = World(tmp_path / "svc")
    h = Harness(
        store=w.store, home=tmp_path / "home", clock=FrozenClock(datetime(2024, 3, 3, 12, tzinfo=UTC))
    )
    h.service.transitions.topic_check = topic_check(w.topics)
    relay = SnsAlarmRelay(w.store.engine, w.topics)
    try:
        real = w.sns.create_topic(Name="exists")["TopicArn"]
        bobs = sns_client(w.server.url, w.bob).create_topic(Name="bobs")["TopicArn"]
        missing = real.replace(":exists", ":no-such-topic")

        def alarm(oid: str, arn: str) -> dict:
            return {
                "id": oid,
                "type": "SnsAlarm",
                "topicArn": arn,
                "role": "r",
                "subject": "s",
                "message": "m",
            }

        work = shell(
            "Work", command="exit 3", maximumRetries="0", onFail=[{"ref": "Missing"}, {"ref": "Bobs"}]
        )
        defn = definition(
            work,
            alarm("Missing", missing),
            alarm("Bobs", bobs),  # another owner's topic: as absent for alice
            alarm("Fine", real),
            alarm("Later", "#{'" + missing + "'}"),  # an expression: known only when it fires
        )
        pid = h.service.create_pipeline("p", "u-p", owner="alice")
        report = h.service.put_definition(pid, from_file_dict(defn))
        assert not report.errored  # saved: a warning, not an error
        warned = {(p.object_id, p.field) for p in report.warnings}
        assert warned == {("Missing", "topicArn"), ("Bobs", "topicArn")}, report.to_aws()
        text = json.dumps(report.to_aws())
        assert "no-such-topic" in text and "names no topic" in text
        h.service.activate(pid)
        h.tick()
        ran = h.drain(lambda task: "FAILED")
        assert ran
        h.tick()
        failed = h.events(ActionFailed, pid)
        assert {e.action_id for e in failed} == {"Missing", "Bobs"}
        assert all("names no topic" in e.error for e in failed)
        logs = list((tmp_path / "home" / "logs" / pid).rglob("actions.log"))
        assert logs, "no actions.log"
        text = "".join(p.read_text() for p in logs)
        assert "ERROR onFail SnsAlarm 'Missing'" in text and "no-such-topic" in text
        assert "ERROR onFail SnsAlarm 'Bobs'" in text
        assert relay.run_once() == 0  # nothing was fired to publish; nothing crashed
    finally:
        w.close()
