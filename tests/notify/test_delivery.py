"""HTTP/S delivery as SNS does it, to a subscriber that verifies signatures like real SNS
subscribers: confirmation handshake, notification bodies and headers, raw delivery, signature
versions 1 and 2, retries on the delivery policy (frozen clock, no sleeping), untrusted endpoints."""

from __future__ import annotations

import functools
import json
import os
import stat
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from notify_helpers import sns_client
from subscriber import Subscriber

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import FrozenClock, SystemClock
from tailrace.notify.alarms import AlarmService
from tailrace.notify.delivery import DeliveryWorker
from tailrace.notify.httpsend import DestinationPolicy, post
from tailrace.notify.metrics import MetricStore
from tailrace.notify.signing import Signer
from tailrace.notify.tables import deliveries
from tailrace.notify.topics import TopicService
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOOPBACK = DestinationPolicy(allow_private=lambda: True)


class World:
    def __init__(self, tmp_path, destinations=LOOPBACK, timeout=5.0):
        self.clock = FrozenClock(T0)
        self.store = open_store(f"sqlite:///{tmp_path}/state.db")
        self.keys = KeyStore(self.store, SystemClock(), cache_seconds=0)
        self.signer = Signer(tmp_path / "notify")
        self.topics = TopicService(self.store.engine, self.clock, check_endpoint=destinations.check_endpoint)
        self.metrics = MetricStore(self.store.engine, self.clock)
        self.alarms = AlarmService(self.store.engine, self.clock, self.metrics, self.topics)
        svc = PipelineService(store=self.store, home=tmp_path / "home", clock=SystemClock())
        app = create_app(
            service=svc,
            store=self.store,
            keys=self.keys,
            clock=SystemClock(),
            topics=self.topics,
            signer=self.signer,
            alarms=self.alarms,
        )
        self.server = ApiServer(app).start()
        self.topics.public_url = self.server.url  # links in messages the service publishes itself
        self.worker = DeliveryWorker(
            self.store.engine,
            self.clock,
            self.signer,
            destinations,
            send=functools.partial(post, timeout=timeout),
        )
        self.key = self.keys.create("alice")
        self.sns = sns_client(self.server.url, self.key)

    def close(self):
        self.worker.stop()
        self.server.stop()
        self.store.close()

    def rows(self):
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(deliveries).order_by(deliveries.c.id)).mappings()]

    def subscribed(self, sub, **attrs):
        arn = self.sns.create_topic(Name="alarms", Attributes=attrs)["TopicArn"]
        sub_arn = self.sns.subscribe(
            TopicArn=arn, Protocol="http", Endpoint=sub.url, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        assert self.worker.run_once() == 1  # the confirmation; the subscriber GETs SubscribeURL
        return arn, sub_arn


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def test_handshake_and_signed_notification(world, tmp_path):
    with Subscriber() as sub:
        arn, sub_arn = world.subscribed(sub)
        confirmation = sub.of_type("SubscriptionConfirmation")[0]
        assert set(confirmation) == {
            "Type", "MessageId", "Token", "TopicArn", "Message", "SubscribeURL", "Timestamp",
            "SignatureVersion", "Signature", "SigningCertURL",
        }  # fmt: skip
        attrs = world.sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
        assert attrs["PendingConfirmation"] == "false"

        mid = world.sns.publish(
            TopicArn=arn,
            Subject="ALARM: web",
            Message="5xx up",
            MessageAttributes={"code": {"DataType": "String", "StringValue": "5xx"}},
        )["MessageId"]
        assert world.worker.run_once() == 1
        (got,) = sub.of_type("Notification")
        assert got["MessageId"] == mid and got["Message"] == "5xx up" and got["Subject"] == "ALARM: web"
        assert got["TopicArn"] == arn and got["SignatureVersion"] == "1"
        assert got["Timestamp"] == "2026-03-01T12:00:00.000Z"
        assert got["MessageAttributes"] == {"code": {"Type": "String", "Value": "5xx"}}
        assert got["UnsubscribeURL"] == f"{world.server.url}/?Action=Unsubscribe&SubscriptionArn={sub_arn}"
        headers = sub.received[-1]["headers"]
        assert headers["content-type"] == "text/plain; charset=UTF-8"
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert headers["x-amz-sns-message-id"] == mid
        assert headers["x-amz-sns-topic-arn"] == arn
        assert headers["x-amz-sns-subscription-arn"] == sub_arn
        assert sub.rejected == []
    key = tmp_path / "notify" / "sns-signing-key.pem"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert b"PRIVATE KEY" not in world.signer.cert_pem


def test_signature_version_2_and_raw_delivery(world):
    with Subscriber() as sub, Subscriber() as raw:
        arn, _ = world.subscribed(sub, SignatureVersion="2")
        raw_arn = world.sns.subscribe(
            TopicArn=arn,
            Protocol="http",
            Endpoint=raw.url,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        world.worker.run_once()
        world.sns.publish(TopicArn=arn, Message='{"plain": "body"}')
        assert world.worker.run_once() == 2
        (got,) = sub.of_type("Notification")
        assert got["SignatureVersion"] == "2" and sub.rejected == []
        (headers, body) = raw.raw[0]
        assert body == b'{"plain": "body"}'
        assert headers["x-amz-sns-rawdelivery"] == "true" and headers["x-amz-sns-subscription-arn"] == raw_arn


def test_tampered_message_is_rejected_by_the_subscriber(world):
    from subscriber import verify

    with Subscriber() as sub:
        arn, _ = world.subscribed(sub)
        world.sns.publish(TopicArn=arn, Message="original")
        world.worker.run_once()
        good = sub.of_type("Notification")[0]
        verify(good)
        from cryptography.exceptions import InvalidSignature

        with pytest.raises(InvalidSignature):
            verify({**good, "Message": "forged"})


def test_retries_follow_the_policy_with_the_same_message_id(world):
    policy = {
        "http": {"defaultHealthyRetryPolicy": {"numRetries": 3, "minDelayTarget": 5, "maxDelayTarget": 5}}
    }
    with Subscriber() as sub:
        arn, _ = world.subscribed(sub, DeliveryPolicy=json.dumps(policy))
        sub.fail_next = 2
        mid = world.sns.publish(TopicArn=arn, Message="m")["MessageId"]
        assert world.worker.run_once() == 1  # 500
        assert world.worker.run_once() == 0  # not due yet
        world.clock.advance(5)
        assert world.worker.run_once() == 1  # 500 again
        world.clock.advance(5)
        assert world.worker.run_once() == 1  # delivered
        assert sub.attempts[-3:] == [mid, mid, mid]
        assert [m["MessageId"] for m in sub.of_type("Notification")] == [mid]
        row = world.rows()[-1]
        assert row["status"] == "delivered" and row["attempts"] == 3

        sub.status = 503
        world.sns.publish(TopicArn=arn, Message="never")
        for _ in range(4):
            world.worker.run_once()
            world.clock.advance(5)
        row = world.rows()[-1]
        assert row["status"] == "failed" and row["attempts"] == 4 and "503" in row["last_error"]


def test_client_errors_and_redirects_are_not_retried_or_followed(world):
    with Subscriber() as sub, Subscriber() as elsewhere:
        arn, _ = world.subscribed(sub)
        sub.redirect_to = elsewhere.url
        world.sns.publish(TopicArn=arn, Message="m")
        world.worker.run_once()
        assert elsewhere.redirect_hits == 0 and sub.redirect_hits == 0
        assert world.rows()[-1]["status"] == "failed"
        sub.redirect_to = None
        sub.status = 404
        world.sns.publish(TopicArn=arn, Message="m2")
        world.worker.run_once()
        assert world.rows()[-1]["status"] == "failed" and "404" in world.rows()[-1]["last_error"]


def test_a_hanging_endpoint_times_out_and_is_retried(tmp_path):
    w = World(tmp_path, timeout=0.3)
    try:
        with Subscriber() as sub:
            arn, _ = w.subscribed(sub)
            sub.hang = 1.0
            w.sns.publish(TopicArn=arn, Message="m")
            assert w.worker.run_once() == 1
            row = w.rows()[-1]
            assert row["status"] == "pending" and row["attempts"] == 1 and "timed out" in row["last_error"]
            sub.hang = 0
            w.clock.advance(20)
            w.worker.run_once()
            assert w.rows()[-1]["status"] == "delivered"
    finally:
        w.close()


def test_private_destinations_are_refused_unless_allowed(tmp_path):
    deny = DestinationPolicy(allow_private=lambda: False)
    w = World(tmp_path, destinations=deny)
    try:
        arn = w.sns.create_topic(Name="t")["TopicArn"]
        for endpoint in (
            "http://127.0.0.1:8040/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
        ):
            with pytest.raises(ClientError) as err:
                w.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint)
            assert err.value.response["Error"]["Code"] == "InvalidParameter"
        allowed = DestinationPolicy.from_text("127.0.0.0/8")
        assert allowed.allows("127.0.0.1") and not allowed.allows("10.0.0.1")
    finally:
        w.close()


def test_delivery_refused_at_send_time_when_policy_tightens(tmp_path):
    """Allowed at Subscribe, refused later (policy changed): the worker checks every send."""
    flag = {"allow": True}
    w = World(tmp_path, destinations=DestinationPolicy(allow_private=lambda: flag["allow"]))
    try:
        with Subscriber() as sub:
            arn, _ = w.subscribed(sub)
            flag["allow"] = False
            w.sns.publish(TopicArn=arn, Message="m")
            w.worker.run_once()
            assert sub.of_type("Notification") == []
            assert w.rows()[-1]["status"] == "failed"
    finally:
        w.close()


def test_the_loop_delivers_without_being_driven(world):
    """start()/stop(): Publish wakes the loop; no run_once from the test."""
    world.topics.on_commit.append(world.worker.wake)
    world.worker.poll_interval = 0.05
    world.worker.start()
    with Subscriber() as sub:
        arn = world.sns.create_topic(Name="live")["TopicArn"]
        world.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=sub.url)
        _until(lambda: sub.of_type("SubscriptionConfirmation"))
        _until(
            lambda: (
                world.sns.list_subscriptions()["Subscriptions"][0]["SubscriptionArn"] != "PendingConfirmation"
            )
        )
        mid = world.sns.publish(TopicArn=arn, Message="live")["MessageId"]
        _until(lambda: [m for m in sub.of_type("Notification") if m["MessageId"] == mid])


def _until(fn, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out waiting for the delivery loop"
        time.sleep(0.05)


def test_one_round_records_a_retry_a_delivery_and_a_failure_together(world):
    # The outcomes of a round are written by one executemany: rows with different outcomes
    # (a retry's next_at, a delivery's status) must all be recorded, in every order.
    with Subscriber() as busy, Subscriber() as fine, Subscriber() as gone:
        busy.status, gone.status = 503, 404
        arn = world.sns.create_topic(Name="mixed")["TopicArn"]
        for s in (busy, fine, gone):
            world.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=s.url)
        busy.status, gone.status = None, None
        assert world.worker.run_once() == 3  # the confirmations
        busy.status, gone.status = 503, 404
        world.sns.publish(TopicArn=arn, Message="m")
        assert world.worker.run_once() == 3
        by_endpoint = {r["endpoint"]: r for r in world.rows() if r["kind"] == "Notification"}
        assert by_endpoint[busy.url]["status"] == "pending" and by_endpoint[busy.url]["attempts"] == 1
        assert by_endpoint[busy.url]["last_error"] == "HTTP 503"
        assert by_endpoint[fine.url]["status"] == "delivered"
        assert by_endpoint[gone.url]["status"] == "failed"
        assert world.worker.run_once() == 0  # the retry waits for its delay, not its lease
        world.clock.advance(20)
        busy.status = None
        assert world.worker.run_once() == 1
        assert {r["status"] for r in world.rows()} == {"delivered", "failed"}
