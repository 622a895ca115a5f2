"""What delivery does once per message rather than once per subscriber: the RSA signature (SNS's
string to sign names no subscription), while each subscriber still gets its own
SubscriptionArn header and UnsubscribeURL and verifies the message the way SNS subscribers do."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from subscriber import Subscriber, verify
from test_delivery import World

from tailrace.notify.delivery import DeliveryWorker
from tailrace.notify.signing import Signer, json_document


def _counting(signer: Signer, *, delay: float = 0.0) -> list[str]:
    """Count (and optionally slow down) the RSA operations of `signer`."""
    calls: list[str] = []
    real = signer._sign

    def sign(text: str, version: str) -> str:
        calls.append(text)
        time.sleep(delay)
        return real(text, version)

    signer._sign = sign  # type: ignore[method-assign]
    return calls


def test_concurrent_deliveries_of_one_message_sign_it_once(tmp_path):
    signer = Signer(tmp_path / "keys")
    calls = _counting(signer, delay=0.2)  # long enough for all threads to ask while it signs
    text = "Message\nhello\nMessageId\nm-1\nTimestamp\n2026-03-01T12:00:00.000Z\nTopicArn\narn\nType\nNotification\n"
    start = threading.Barrier(8)
    results: list[str] = []

    def deliver() -> None:
        start.wait()
        results.append(signer.sign(text, "2"))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1 and len(results) == 8
    cert = x509.load_pem_x509_certificate(signer.cert_pem)
    cert.public_key().verify(  # type: ignore[union-attr,call-arg]
        base64.b64decode(results[0]), text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert signer.sign(text, "1") != results[0] and len(calls) == 2  # per SignatureVersion


def test_a_failed_signing_does_not_strand_the_waiters(tmp_path):
    signer = Signer(tmp_path / "keys")
    real = signer._sign
    failures = [RuntimeError("first try fails")]

    def flaky(text: str, version: str) -> str:
        time.sleep(0.1)
        if failures:
            raise failures.pop()
        return real(text, version)

    signer._sign = flaky  # type: ignore[method-assign]
    out: list[object] = []

    def deliver() -> None:
        try:
            out.append(signer.sign("x\n", "1"))
        except RuntimeError as exc:
            out.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(o, RuntimeError) for o in out) == 1
    assert len({o for o in out if isinstance(o, str)}) == 1 and len(out) == 4


def test_every_subscriber_verifies_the_once_signed_message_and_gets_its_own_arn(tmp_path):
    world = World(tmp_path)
    # The delivery loop as `tailrace up` runs it: kept connections, several sender threads.
    worker = DeliveryWorker(
        world.store.engine, world.clock, world.signer, world.worker.destinations, threads=5
    )
    subs = [Subscriber() for _ in range(5)]
    try:
        for s in subs:
            s.__enter__()
        arn = world.sns.create_topic(Name="fanout", Attributes={"SignatureVersion": "2"})["TopicArn"]
        sub_arns = [
            world.sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=s.url, ReturnSubscriptionArn=True)[
                "SubscriptionArn"
            ]
            for s in subs
        ]
        assert worker.run_once() == 5  # the confirmations (five messages, five signatures)
        calls = _counting(world.signer)
        mid = world.sns.publish(TopicArn=arn, Subject="5xx", Message="up")["MessageId"]
        assert worker.run_once() == 5
        assert len(calls) == 1  # one RSA signature for the five deliveries
        got = []
        for s, sub_arn in zip(subs, sub_arns, strict=True):
            (message,) = s.of_type("Notification")
            assert s.rejected == []  # verified against SigningCertURL by the subscriber
            verify(message)
            assert message["MessageId"] == mid and message["SignatureVersion"] == "2"
            assert s.received[-1]["headers"]["x-amz-sns-subscription-arn"] == sub_arn
            assert message["UnsubscribeURL"].endswith(f"SubscriptionArn={sub_arn}")
            got.append(message["Signature"])
        assert len(set(got)) == 1 and len(set(sub_arns)) == 5
    finally:
        worker.stop()
        for s in subs:
            s.__exit__(None, None, None)
        world.close()


def test_the_body_keeps_json_dumps_indented_layout():
    import json

    message = {
        "Type": "Notification",
        "Message": 'caf\u00e9 "q" \\ \n\t\x01 \u2028 \U0001f600',
        "MessageAttributes": {"code": {"Type": "String", "Value": "5xx"}, "empty": {}},
        "Empty": {},
    }
    assert json_document(message) == json.dumps(message, indent=2)
    assert json_document({}) == json.dumps({}, indent=2)


def _reference_body(payload: dict, subscription_arn: str, signer: Signer) -> bytes:
    """The body as the service built it before the shared parts were kept: json.dumps of the
    whole document, SNS's field order, indented."""
    import json

    from tailrace.notify.signing import CERT_PATH_PREFIX, string_to_sign

    kind = payload["Type"]
    m = {"Type": kind, "MessageId": payload["MessageId"]}
    if kind != "Notification":
        m["Token"] = payload["Token"]
    m["TopicArn"] = payload["TopicArn"]
    if kind == "Notification" and payload.get("Subject") is not None:
        m["Subject"] = payload["Subject"]
    m["Message"] = payload["Message"]
    if kind != "Notification":
        m["SubscribeURL"] = payload["SubscribeURL"]
    m["Timestamp"] = payload["Timestamp"]
    m["SignatureVersion"] = payload["SignatureVersion"]
    m["Signature"] = signer.sign(string_to_sign(m), payload["SignatureVersion"])
    m["SigningCertURL"] = f"{payload['BaseURL']}{CERT_PATH_PREFIX}{signer.cert_name}"
    if kind == "Notification":
        m["UnsubscribeURL"] = f"{payload['BaseURL']}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"
        if payload.get("MessageAttributes"):
            m["MessageAttributes"] = payload["MessageAttributes"]
    return json.dumps(m, indent=2).encode()


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"Subject": 'ALARM: "web" in EU', "MessageAttributes": {"code": {"Type": "String", "Value": "5xx"}}},
        {"Type": "SubscriptionConfirmation", "Token": "t0k", "SubscribeURL": "http://u/?Action=Confirm&T=1"},
        {"Type": "UnsubscribeConfirmation", "Token": "t0k", "SubscribeURL": "http://u/?x=\u00e9"},
        {"Raw": True, "Subject": "raw"},
    ],
)
def test_kept_documents_give_every_subscriber_the_same_body_as_before(tmp_path, extra):
    import json

    from tailrace.notify.signing import Documents, http_request

    signer = Signer(tmp_path / "keys")
    payload = {
        "Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-west-1:1:t",
        "Message": "caf\u00e9 \"5xx\"\nup", "Timestamp": "2026-03-01T12:00:00.000Z",
        "SignatureVersion": "2", "BaseURL": "http://127.0.0.1:8040", "Raw": False, **extra,
    }  # fmt: skip
    documents = Documents(signer)
    text = json.dumps(payload, sort_keys=True)
    for sub_arn in ("arn:aws:sns:eu-west-1:1:t:a", "arn:aws:sns:eu-west-1:1:t:b"):
        body, headers = documents.request(text, sub_arn)
        assert (body, headers) == http_request(payload, sub_arn, signer)
        if payload["Raw"]:
            assert body == payload["Message"].encode() and headers["x-amz-sns-rawdelivery"] == "true"
        else:
            assert body == _reference_body(payload, sub_arn, signer)
        if payload["Type"] == "Notification":
            assert headers["x-amz-sns-subscription-arn"] == sub_arn
