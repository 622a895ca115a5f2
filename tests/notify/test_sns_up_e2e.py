"""End to end: `tailrace up` as a subprocess, driven by the AWS CLI (`aws sns ...`) and unchanged
boto3; an HTTP subscriber that confirms and verifies signatures like a real SNS subscriber; then
kill -9 while a failing subscriber is being retried, restart, and every message arrives."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from notify_helpers import sns_client
from subscriber import Subscriber

AWS = Path(sys.executable).parent / "aws"


def _until(what, fn, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Up:
    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.tmp = tmp_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
        # Several owners could exist; the test's subscriber is on loopback, so allow it explicitly.
        self.env.update(
            TAILRACE_HOME=str(self.home), PYTHONUNBUFFERED="1", TAILRACE_NOTIFY_PRIVATE_DESTINATIONS="allow"
        )
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, port: int = 0) -> str:
        log = (self.tmp / "up.log").open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tailrace",
                "up",
                "--s3-port",
                "off",
                "--port",
                str(port),
                "--workers",
                "1",
                "--poll",
                "0.5",
            ],
            cwd=self.tmp,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                return self.url
        raise AssertionError("tailrace up exited:\n" + (self.tmp / "up.log").read_text())

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def up(tmp_path):
    u = Up(tmp_path)
    u.start()
    yield u
    u.stop()


class _Key:
    def __init__(self, creds):
        self.access_key_id, self.secret_access_key = creds["AccessKeyId"], creds["SecretAccessKey"]


def test_aws_cli_boto3_and_kill9_against_tailrace_up(up):
    creds = json.loads((up.home / "credentials.json").read_text())
    env = {
        **up.env,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }

    def aws(*args: str, ok: bool = True, service: str = "sns") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(AWS), "--endpoint-url", up.url, service, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode == 0) == ok, done.stderr
        return done

    with Subscriber() as sub:
        arn = json.loads(aws("create-topic", "--name", "web-alarms").stdout)["TopicArn"]
        assert arn.startswith("arn:aws:sns:eu-west-1:")
        policy = {
            "http": {
                "defaultHealthyRetryPolicy": {"numRetries": 50, "minDelayTarget": 1, "maxDelayTarget": 1}
            }
        }
        aws("set-topic-attributes", "--topic-arn", arn, "--attribute-name", "DeliveryPolicy",
            "--attribute-value", json.dumps(policy))  # fmt: skip
        aws("subscribe", "--topic-arn", arn, "--protocol", "http", "--notification-endpoint", sub.url)
        _until("the confirmation handshake", lambda: sub.of_type("SubscriptionConfirmation"))
        subs = _until(
            "a confirmed subscription",
            lambda: [
                s
                for s in json.loads(aws("list-subscriptions-by-topic", "--topic-arn", arn).stdout)[
                    "Subscriptions"
                ]
                if s["SubscriptionArn"] != "PendingConfirmation"
            ],
        )
        mid = json.loads(
            aws("publish", "--topic-arn", arn, "--subject", "hello", "--message", "from the cli").stdout
        )["MessageId"]
        got = _until(
            "the CLI's message", lambda: [m for m in sub.of_type("Notification") if m["MessageId"] == mid]
        )
        assert got[0]["Message"] == "from the cli" and got[0]["Subject"] == "hello"
        assert sub.rejected == []
        attrs = json.loads(aws("get-topic-attributes", "--topic-arn", arn).stdout)["Attributes"]
        assert attrs["SubscriptionsConfirmed"] == "1"
        bad = subprocess.run(
            [str(AWS), "--endpoint-url", up.url, "sns", "list-topics"],
            env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0 and "SignatureDoesNotMatch" in bad.stderr

        # CloudWatch through the AWS CLI: a metric, an alarm whose action is the topic, a state change.
        def cw(*args: str) -> str:
            return aws(*args, service="cloudwatch").stdout

        cw("put-metric-data", "--namespace", "Web", "--metric-name", "5xx", "--value", "7",
           "--dimensions", "host=web-1")  # fmt: skip
        assert json.loads(cw("list-metrics", "--namespace", "Web"))["Metrics"][0]["MetricName"] == "5xx"
        cw("put-metric-alarm", "--alarm-name", "web-5xx", "--metric-name", "5xx", "--namespace", "Web",
           "--statistic", "Sum", "--period", "60", "--evaluation-periods", "2", "--threshold", "10",
           "--comparison-operator", "GreaterThanOrEqualToThreshold", "--dimensions", "Name=host,Value=web-1",
           "--alarm-actions", arn)  # fmt: skip
        cw("set-alarm-state", "--alarm-name", "web-5xx", "--state-value", "ALARM", "--state-reason", "drill")
        alarm = _until(
            "the alarm message",
            lambda: [m for m in sub.of_type("Notification") if m["Subject"].startswith("ALARM")],
        )[0]
        assert alarm["Subject"] == 'ALARM: "web-5xx" in Europe (Ireland)'
        body = json.loads(alarm["Message"])
        assert body["NewStateValue"] == "ALARM" and body["NewStateReason"] == "drill"
        assert body["StateChangeTime"].endswith("+0000") and body["Trigger"]["Statistic"] == "SUM"
        # As in CloudWatch, the next evaluation may already have replaced the drill's state; the
        # history keeps the transition.
        history = json.loads(
            cw("describe-alarm-history", "--alarm-name", "web-5xx", "--history-item-type", "StateUpdate")
        )["AlarmHistoryItems"]
        assert any(h["HistorySummary"].endswith("to ALARM") for h in history)
        assert (
            json.loads(cw("describe-alarms", "--alarm-names", "web-5xx"))["MetricAlarms"][0]["AlarmName"]
            == "web-5xx"
        )
        cw("delete-alarms", "--alarm-names", "web-5xx")

        # The subscriber goes down; three messages are retried; the service is killed mid-way.
        sns = sns_client(up.url, _Key(creds), region="eu-west-1")
        sub.fail_next = 10_000
        ids = [sns.publish(TopicArn=arn, Message=f"m{i}")["MessageId"] for i in range(3)]
        _until("retries of every message", lambda: all(sub.attempts.count(i) >= 2 for i in ids))
        up.kill9()
        tries_before = {i: sub.attempts.count(i) for i in ids}
        sub.fail_next = 0
        up.start(port=up.port)  # same address: the links in stored messages point here
        delivered = _until(
            "every message after the restart",
            lambda: (found := {m["MessageId"] for m in sub.of_type("Notification")}) >= set(ids) and found,
        )
        assert set(ids) <= delivered
        assert all(sub.attempts.count(i) > tries_before[i] for i in ids)  # retried after the restart
        assert sub.rejected == []
        aws("unsubscribe", "--subscription-arn", subs[0]["SubscriptionArn"])
        _until("the unsubscribe confirmation", lambda: sub.of_type("UnsubscribeConfirmation"))
        aws("delete-topic", "--topic-arn", arn)
        assert json.loads(aws("list-topics").stdout)["Topics"] == []
