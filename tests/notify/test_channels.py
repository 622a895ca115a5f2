"""Deliveries that are not HTTP, against real servers: email and email-json through a local SMTP
server (aiosmtpd) with SNS's confirmation mail, redis PUBLISH on the local Redis, and store
objects in the owner's own bucket; each retried on the same machinery as HTTP."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import socket
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from botocore.exceptions import ClientError
from notify_helpers import sns_client
from subscriber import verify

from tailrace.api.app import create_app
from tailrace.api.keys import KeyStore
from tailrace.api.server import ApiServer
from tailrace.clock import FrozenClock, SystemClock
from tailrace.config import SmtpSettings
from tailrace.notify.alarms import AlarmService
from tailrace.notify.channels import EndpointRules, senders
from tailrace.notify.delivery import DeliveryWorker
from tailrace.notify.httpsend import DestinationPolicy
from tailrace.notify.metrics import MetricStore
from tailrace.notify.signing import Signer
from tailrace.notify.tables import deliveries
from tailrace.notify.topics import TopicService
from tailrace.runtime.service import PipelineService
from tailrace.state import open_store
from tailrace.storage import Storage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REDIS_URL = "redis://127.0.0.1:6379/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """A local SMTP server that keeps what it accepts; `password` turns on AUTH LOGIN/PLAIN."""

    def __init__(self, password: str | None = None) -> None:
        self.mails: list[email.message.EmailMessage] = []
        self.logins: list[str] = []
        self.port = _free_port()
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                box.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = password is not None and auth_data.password.decode() == password
            box.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        kwargs = {"authenticator": authenticator, "auth_require_tls": False} if password else {}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class World:
    def __init__(self, tmp_path, *, smtp: SmtpSettings | None = None, destinations=None, at=T0):
        self.clock = FrozenClock(at)
        self.store = open_store(f"sqlite:///{tmp_path}/state.db")
        self.keys = KeyStore(self.store, SystemClock(), cache_seconds=0)
        self.signer = Signer(tmp_path / "notify")
        self.storage = Storage(home=tmp_path / "home")
        destinations = destinations or DestinationPolicy(allow_private=lambda: True)
        self.rules = EndpointRules(destinations, storage=self.storage, smtp=smtp)
        self.topics = TopicService(self.store.engine, self.clock, protocols=self.rules.protocols)
        self.topics.check_owned_endpoint = self.rules.check
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
        self.topics.public_url = self.server.url
        self.worker = DeliveryWorker(
            self.store.engine,
            self.clock,
            self.signer,
            destinations,
            senders=senders(self.rules, self.signer, smtp),
        )
        self.alice = self.keys.create("alice")
        self.bob = self.keys.create("bob")
        self.sns = sns_client(self.server.url, self.alice)

    def close(self):
        self.worker.stop()
        self.server.stop()
        self.store.close()

    def rows(self):
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(deliveries).order_by(deliveries.c.id)).mappings()]


@pytest.fixture
def mailbox():
    box = Mailbox().start()
    yield box
    box.stop()


def test_email_confirmation_flow_then_notifications(tmp_path, mailbox):
    smtp = SmtpSettings(host="127.0.0.1", port=mailbox.port, from_address="alarms@example.org")
    w = World(tmp_path, smtp=smtp)
    try:
        arn = w.sns.create_topic(Name="mail")["TopicArn"]
        assert (
            w.sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="ops@example.org")["SubscriptionArn"]
            == "pending confirmation"
        )
        assert w.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["SubscriptionArn"] == (
            "PendingConfirmation"
        )
        w.sns.publish(TopicArn=arn, Message="not yet")  # nobody confirmed: nothing is sent
        assert w.worker.run_once() == 1
        (confirmation,) = mailbox.mails
        assert confirmation["To"] == "ops@example.org" and confirmation["From"] == "alarms@example.org"
        assert confirmation["Subject"] == "AWS Notification - Subscription Confirmation"
        link = re.search(r"(http://\S+Action=ConfirmSubscription\S+)", confirmation.get_content()).group(1)
        with urllib.request.urlopen(link) as resp:  # what the recipient's click does
            assert b"<SubscriptionArn>" in resp.read()
        w.sns.publish(TopicArn=arn, Message="disk full on web-3", Subject="disk")
        assert w.worker.run_once() == 1
        mail = mailbox.mails[-1]
        assert mail["Subject"] == "disk"
        text = mail.get_content()
        assert text.startswith("disk full on web-3") and "Action=Unsubscribe&SubscriptionArn=" in text
        assert [r["status"] for r in w.rows()] == ["delivered", "delivered"]
    finally:
        w.close()


def test_email_json_carries_the_signed_document(tmp_path, mailbox):
    smtp = SmtpSettings(host="127.0.0.1", port=mailbox.port)
    w = World(tmp_path, smtp=smtp)
    try:
        arn = w.sns.create_topic(Name="mailjson")["TopicArn"]
        w.sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint="robot@example.org")
        w.worker.run_once()
        confirmation = json.loads(mailbox.mails[0].get_content())
        assert confirmation["Type"] == "SubscriptionConfirmation"
        verify(confirmation)
        with urllib.request.urlopen(confirmation["SubscribeURL"]) as resp:
            resp.read()
        mid = w.sns.publish(TopicArn=arn, Message='{"AlarmName": "x"}')["MessageId"]
        w.worker.run_once()
        doc = json.loads(mailbox.mails[-1].get_content())
        assert doc["MessageId"] == mid and doc["Message"] == '{"AlarmName": "x"}'
        verify(doc)  # as a subscriber would: the certificate from SigningCertURL
    finally:
        w.close()


def test_smtp_login_and_the_password_stays_secret(tmp_path, caplog):
    box = Mailbox(password="hunter2-smtp").start()
    caplog.set_level(logging.DEBUG)
    try:
        wrong = SmtpSettings(host="127.0.0.1", port=box.port, user="notifier", password="wrong-pass")
        w = World(tmp_path, smtp=wrong)
        try:
            arn = w.sns.create_topic(Name="auth")["TopicArn"]
            w.sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@example.org")
            assert w.worker.run_once() == 1
            (row,) = w.rows()
            assert row["status"] == "pending" and "SMTP login refused" in row["last_error"]  # retried
            assert "wrong-pass" not in row["last_error"]
            assert not box.mails
            good = SmtpSettings(host="127.0.0.1", port=box.port, user="notifier", password="hunter2-smtp")
            w.worker.senders = senders(w.rules, w.signer, good)
            w.clock.advance(timedelta(seconds=21))  # the default policy's delay
            assert w.worker.run_once() == 1
            assert len(box.mails) == 1 and box.logins[-1] == "notifier"
            assert "hunter2-smtp" not in repr(good)
        finally:
            w.close()
        assert "hunter2-smtp" not in caplog.text and "wrong-pass" not in caplog.text
    finally:
        box.stop()


def test_smtp_server_down_is_retried_and_then_delivered(tmp_path):
    port = _free_port()
    smtp = SmtpSettings(host="127.0.0.1", port=port, timeout=2.0)
    w = World(tmp_path, smtp=smtp)
    try:
        arn = w.sns.create_topic(Name="down")["TopicArn"]
        w.sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@example.org")
        assert w.worker.run_once() == 1
        (row,) = w.rows()
        assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"].startswith("SMTP")
        box = Mailbox()
        box.port = port
        box.controller = Controller(box.controller.handler, hostname="127.0.0.1", port=port)
        box.start()
        try:
            w.clock.advance(timedelta(seconds=21))
            assert w.worker.run_once() == 1
            assert w.rows()[0]["status"] == "delivered" and len(box.mails) == 1
        finally:
            box.stop()
    finally:
        w.close()


def test_email_is_refused_without_an_smtp_server_and_bad_addresses_are_refused(tmp_path, mailbox):
    w = World(tmp_path)  # no [smtp] host
    try:
        arn = w.sns.create_topic(Name="nomail")["TopicArn"]
        with pytest.raises(ClientError) as err:
            w.sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@example.org")
        assert err.value.response["Error"]["Code"] == "InvalidParameter"
    finally:
        w.close()
    w = World(tmp_path / "2", smtp=SmtpSettings(host="127.0.0.1", port=mailbox.port))
    try:
        arn = w.sns.create_topic(Name="badmail")["TopicArn"]
        for bad in ("not-an-address", "a@b@c", "a@example.org\r\nBcc: x@y.z"):
            with pytest.raises(ClientError) as err:
                w.sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=bad)
            assert err.value.response["Error"]["Code"] == "InvalidParameter", bad
    finally:
        w.close()


def test_redis_channel_gets_each_message_as_signed_json(tmp_path):
    w = World(tmp_path)
    channel = f"alarms-{uuid.uuid4().hex[:8]}"
    listener = redis.Redis.from_url(REDIS_URL).pubsub()
    listener.subscribe(channel)
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    try:
        arn = w.sns.create_topic(Name="dash")["TopicArn"]
        sub = w.sns.subscribe(TopicArn=arn, Protocol="redis", Endpoint=f"{REDIS_URL}#{channel}")
        assert sub["SubscriptionArn"].startswith(arn + ":")  # confirmed at once: nothing to click
        mid = w.sns.publish(TopicArn=arn, Message="5xx up", Subject="web")["MessageId"]
        assert w.worker.run_once() == 1
        got = listener.get_message(timeout=5)
        doc = json.loads(got["data"])
        assert doc["MessageId"] == mid and doc["Message"] == "5xx up" and doc["Subject"] == "web"
        verify(doc)
    finally:
        listener.close()
        w.close()


def test_redis_endpoints_obey_the_destination_rules(tmp_path):
    w = World(tmp_path, destinations=DestinationPolicy(allow_private=lambda: False))
    try:
        arn = w.sns.create_topic(Name="r")["TopicArn"]
        bad = {
            f"{REDIS_URL}#x": "does not deliver to",  # loopback refused with several owners
            "redis://127.0.0.1:6379/0": "channel",
            "redis://:secret@127.0.0.1:6379/0#x": "credentials",
            "redis://127.0.0.1:6379/0#tailrace:events": "service's own",
            "redis://127.0.0.1:6379/abc#x": "database",
        }
        for endpoint, why in bad.items():
            with pytest.raises(ClientError) as err:
                w.sns.subscribe(TopicArn=arn, Protocol="redis", Endpoint=endpoint)
            assert err.value.response["Error"]["Code"] == "InvalidParameter", endpoint
            assert why in err.value.response["Error"]["Message"], (endpoint, err.value.response)
            assert "secret" not in err.value.response["Error"]["Message"]
    finally:
        w.close()
    allowed = DestinationPolicy.from_text("127.0.0.1/32", allow_private=False)
    w = World(tmp_path / "2", destinations=allowed)
    try:
        arn = w.sns.create_topic(Name="r")["TopicArn"]
        w.sns.subscribe(TopicArn=arn, Protocol="redis", Endpoint=f"{REDIS_URL}#ok-{uuid.uuid4().hex[:6]}")
    finally:
        w.close()


def test_store_writes_one_object_per_message_in_the_owners_bucket(tmp_path):
    w = World(tmp_path)
    bucket = f"alice-archive-{uuid.uuid4().hex[:6]}"
    try:
        arn = w.sns.create_topic(Name="archive")["TopicArn"]
        w.sns.subscribe(TopicArn=arn, Protocol="store", Endpoint=f"s3://{bucket}/sns/")
        ids = [w.sns.publish(TopicArn=arn, Message=f"m{i}")["MessageId"] for i in range(3)]
        assert w.worker.run_once() == 3
        owner_view = w.storage.for_owner("alice")
        for i, mid in enumerate(ids):
            doc = json.loads(owner_view.read_bytes(f"s3://{bucket}/sns/2026/03/01/{mid}.json"))
            assert doc["Message"] == f"m{i}" and doc["MessageId"] == mid
            verify(doc)
        # Retried deliveries write the same key: one object per message, never two.
        keys = [i.key for i in owner_view.list_files(f"s3://{bucket}/sns/")]
        assert len(keys) == 3
    finally:
        w.close()


def test_store_in_another_owners_bucket_is_refused(tmp_path):
    w = World(tmp_path)
    bucket = f"alice-only-{uuid.uuid4().hex[:6]}"
    try:
        w.storage.for_owner("alice").write_bytes(f"s3://{bucket}/x", b"alice's")  # alice owns it
        bob = sns_client(w.server.url, w.bob)
        arn = bob.create_topic(Name="steal")["TopicArn"]
        with pytest.raises(ClientError) as err:
            bob.subscribe(TopicArn=arn, Protocol="store", Endpoint=f"s3://{bucket}/loot/")
        assert err.value.response["Error"]["Code"] == "AuthorizationError"
        assert "another owner" in err.value.response["Error"]["Message"]
        for bad in ("file:///etc/", "s3://../x/", f"s3://{bucket}/a//b/"):
            with pytest.raises(ClientError) as err:
                bob.subscribe(TopicArn=arn, Protocol="store", Endpoint=bad)
            assert err.value.response["Error"]["Code"] in ("InvalidParameter", "AuthorizationError"), bad
        # A subscription made while alice could use the bucket, then the bucket changing hands
        # (here: a row forged to bob's owner) is refused at send time, not written.
        alice_arn = w.sns.create_topic(Name="mine")["TopicArn"]
        w.sns.subscribe(TopicArn=alice_arn, Protocol="store", Endpoint=f"s3://{bucket}/ok/")
        w.sns.publish(TopicArn=alice_arn, Message="m")
        with w.store.engine.begin() as conn:
            conn.execute(deliveries.update().values(owner="bob"))
        assert w.worker.run_once() == 1
        (row,) = w.rows()
        assert row["status"] == "failed" and "another owner" in row["last_error"]
        assert list(w.storage.for_owner("alice").list_files(f"s3://{bucket}/ok/")) == []
    finally:
        w.close()


def test_smtp_settings_from_tailrace_toml_keep_the_password_out_of_print(tmp_path):
    from tailrace.config import load_settings

    toml = tmp_path / "tailrace.toml"
    toml.write_text(
        '[smtp]\nhost = "mail.internal"\nport = 587\nuser = "n"\npassword = "pw-9f3e"\nstarttls = true\n'
    )
    settings = load_settings(config_file=toml, environ={"TAILRACE_SMTP__FROM_ADDRESS": "a@example.org"})
    assert settings.smtp.host == "mail.internal" and settings.smtp.starttls and settings.smtp.port == 587
    assert settings.smtp.from_address == "a@example.org"
    assert "pw-9f3e" not in repr(settings) and "pw-9f3e" not in json.dumps(settings.as_dict(), default=str)
    toml.write_text('[smtp]\nhost = "m"\nprot = 25\n')
    with pytest.raises(Exception, match="prot"):
        load_settings(config_file=toml, environ={})
