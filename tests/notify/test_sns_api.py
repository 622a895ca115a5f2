"""The SNS Query API driven by an unchanged boto3 `sns` client over HTTP, signed with tailrace keys."""

from __future__ import annotations

import json
import urllib.request

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from notify_helpers import sns_client

from tailrace.notify.arns import account_for
from tailrace.notify.tables import deliveries, subscriptions


def _code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def _pending(store, kind="Notification"):
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries).where(deliveries.c.kind == kind)).mappings()
        return [dict(r) for r in rows]


def _token(store, sub_arn):
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(subscriptions.c.token).where(subscriptions.c.arn == sub_arn)
        ).scalar_one()


def test_topics_round_trip(server, alice):
    sns = sns_client(server.url, alice, region="eu-west-1")
    arn = sns.create_topic(Name="alarms", Tags=[{"Key": "team", "Value": "web"}])["TopicArn"]
    assert arn == f"arn:aws:sns:eu-west-1:{account_for('alice')}:alarms"
    assert sns.create_topic(Name="alarms")["TopicArn"] == arn  # idempotent by name
    other = sns.create_topic(Name="other")["TopicArn"]
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == sorted([arn, other])

    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Web alarms")
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "Web alarms"
    assert attrs["Owner"] == account_for("alice")
    assert attrs["SubscriptionsConfirmed"] == "0"
    policy = json.loads(attrs["EffectiveDeliveryPolicy"])
    assert policy["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3

    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]

    sns.delete_topic(TopicArn=other)
    sns.delete_topic(TopicArn=other)  # deleting twice succeeds, as in SNS
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [arn]


def test_list_topics_pages(server, alice):
    sns = sns_client(server.url, alice)
    made = {sns.create_topic(Name=f"t{i:03d}")["TopicArn"] for i in range(105)}
    paginator = sns.get_paginator("list_topics")
    seen = [t["TopicArn"] for page in paginator.paginate() for t in page["Topics"]]
    assert len(seen) == 105 and set(seen) == made


def test_subscribe_confirm_publish_and_filter(server, alice, store):
    sns = sns_client(server.url, alice)
    arn = sns.create_topic(Name="web")["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:1/a")[
        "SubscriptionArn"
    ] == ("pending confirmation")
    sub_b = sns.subscribe(
        TopicArn=arn,
        Protocol="http",
        Endpoint="http://127.0.0.1:1/b",
        Attributes={"FilterPolicy": json.dumps({"status": [{"numeric": [">=", 500]}]})},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    confirmations = _pending(store, "SubscriptionConfirmation")
    assert len(confirmations) == 2
    payload = json.loads(confirmations[0]["payload"])
    assert payload["SubscribeURL"].startswith(server.url + "/?Action=ConfirmSubscription&TopicArn=")

    # Subscription "a" confirmed through the API, "b" through the SubscribeURL link (a plain GET).
    sub_a = [
        s
        for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        if s["Endpoint"].endswith("/a")
    ]
    assert sub_a[0]["SubscriptionArn"] == "PendingConfirmation"
    token_a = next(json.loads(c["payload"])["Token"] for c in confirmations if c["endpoint"].endswith("/a"))
    confirmed_a = sns.confirm_subscription(TopicArn=arn, Token=token_a)["SubscriptionArn"]
    link = next(
        json.loads(c["payload"])["SubscribeURL"] for c in confirmations if c["endpoint"].endswith("/b")
    )
    with urllib.request.urlopen(link) as resp:
        assert sub_b.encode() in resp.read()
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub_b)["Attributes"]
    assert attrs["PendingConfirmation"] == "false"
    assert attrs["FilterPolicyScope"] == "MessageAttributes"

    ok = sns.publish(
        TopicArn=arn,
        Message="disk full",
        Subject="web 5xx",
        MessageAttributes={"status": {"DataType": "Number", "StringValue": "503"}},
    )["MessageId"]
    low = sns.publish(
        TopicArn=arn,
        Message="fine",
        MessageAttributes={"status": {"DataType": "Number", "StringValue": "200"}},
    )["MessageId"]
    sent = _pending(store)
    by_message = {}
    for row in sent:
        by_message.setdefault(row["message_id"], set()).add(row["subscription_arn"])
    assert by_message[ok] == {confirmed_a, sub_b}
    assert by_message[low] == {confirmed_a}  # b's filter wants status >= 500
    first = json.loads(next(r["payload"] for r in sent if r["message_id"] == ok))
    assert first["Subject"] == "web 5xx" and first["Message"] == "disk full"
    assert first["MessageAttributes"] == {"status": {"Type": "Number", "Value": "503"}}


def test_message_structure_json_and_batch(server, alice, store):
    sns = sns_client(server.url, alice)
    arn = sns.create_topic(Name="s")["TopicArn"]
    sub = sns.subscribe(
        TopicArn=arn, Protocol="https", Endpoint="https://127.0.0.1:1/", ReturnSubscriptionArn=True
    )
    sns.confirm_subscription(TopicArn=arn, Token=_token(store, sub["SubscriptionArn"]))
    sns.publish(
        TopicArn=arn, MessageStructure="json", Message=json.dumps({"default": "d", "https": "for https"})
    )
    out = sns.publish_batch(
        TopicArn=arn,
        PublishBatchRequestEntries=[
            {"Id": "one", "Message": "m1"},
            {"Id": "two", "Message": "m2", "Subject": "bad\nsubject"},
        ],
    )
    assert [s["Id"] for s in out["Successful"]] == ["one"]
    assert out["Failed"][0]["Id"] == "two" and out["Failed"][0]["Code"] == "InvalidParameter"
    messages = sorted(json.loads(r["payload"])["Message"] for r in _pending(store))
    assert messages == ["for https", "m1"]
    with pytest.raises(ClientError) as err:
        sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": "x", "Message": "a"}] * 2)
    assert _code(err.value) == "BatchEntryIdsNotDistinct"


def test_owners_are_isolated(server, alice, bob, store):
    a = sns_client(server.url, alice)
    b = sns_client(server.url, bob)
    arn = a.create_topic(Name="private")["TopicArn"]
    sub = a.subscribe(
        TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:1/", ReturnSubscriptionArn=True
    )
    assert b.list_topics()["Topics"] == []
    assert b.list_subscriptions()["Subscriptions"] == []
    # Same name for bob: his own topic, in his own account.
    assert b.create_topic(Name="private")["TopicArn"] != arn
    for call in (
        lambda: b.publish(TopicArn=arn, Message="x"),
        lambda: b.get_topic_attributes(TopicArn=arn),
        lambda: b.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="x"),
        lambda: b.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:2/"),
        lambda: b.delete_topic(TopicArn=arn),
        lambda: b.list_subscriptions_by_topic(TopicArn=arn),
        lambda: b.unsubscribe(SubscriptionArn=sub["SubscriptionArn"]),
        lambda: b.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"]),
        lambda: b.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err.value) == "AuthorizationError"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert a.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsPending"] == "1"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s, arn: s.publish(TopicArn=arn, Message="x" * 262_145), "InvalidParameter"),
        (lambda s, arn: s.publish(TopicArn=arn, Message=""), "InvalidParameter"),
        (lambda s, arn: s.publish(TopicArn=arn + "-gone", Message="x"), "NotFound"),
        (lambda s, arn: s.get_topic_attributes(TopicArn="not-an-arn"), "InvalidParameter"),
        (lambda s, arn: s.create_topic(Name="bad name!"), "InvalidParameter"),
        (
            lambda s, arn: s.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x"),
            "InvalidParameter",
        ),
        (lambda s, arn: s.subscribe(TopicArn=arn, Protocol="http", Endpoint="ftp://x/"), "InvalidParameter"),
        (
            lambda s, arn: s.subscribe(
                TopicArn=arn, Protocol="http", Endpoint="http://h/", Attributes={"FilterPolicy": '{"a": "b"}'}
            ),
            "InvalidParameter",
        ),
        (
            lambda s, arn: s.subscribe(
                TopicArn=arn, Protocol="http", Endpoint="http://h/", Attributes={"FilterPolicy": "{not json"}
            ),
            "InvalidParameter",
        ),
        (
            lambda s, arn: s.set_topic_attributes(
                TopicArn=arn,
                AttributeName="DeliveryPolicy",
                AttributeValue='{"http": {"defaultHealthyRetryPolicy": {"numRetries": -1}}}',
            ),
            "InvalidParameter",
        ),
        (
            lambda s, arn: s.set_topic_attributes(TopicArn=arn, AttributeName="Nope", AttributeValue="1"),
            "InvalidParameter",
        ),
        (lambda s, arn: s.publish(TopicArn=arn, Message="x", MessageStructure="json"), "InvalidParameter"),
        (lambda s, arn: s.confirm_subscription(TopicArn=arn, Token="forged"), "InvalidParameter"),
        (lambda s, arn: s.list_tags_for_resource(ResourceArn=arn + "-gone"), "ResourceNotFound"),
        (
            lambda s, arn: s.publish(
                TopicArn=arn,
                Message="x",
                MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}},
            ),
            "InvalidParameter",
        ),
    ],
)
def test_bad_input_gets_sns_errors(server, alice, call, code):
    sns = sns_client(server.url, alice)
    arn = sns.create_topic(Name="t")["TopicArn"]
    with pytest.raises(ClientError) as err:
        call(sns, arn)
    assert _code(err.value) == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500


def test_wrong_keys_and_malformed_requests(server, alice):
    with pytest.raises(ClientError) as err:
        sns_client(server.url, alice, secret="wrong").list_topics()
    assert _code(err.value) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as err:
        sns_client(server.url, None).list_topics()
    assert _code(err.value) == "InvalidClientTokenId"

    def post(body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(
            server.url + "/", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    status, text = post(b"Action=ListTopics&Version=2010-03-31")
    assert status == 403 and "<Code>MissingAuthenticationToken</Code>" in text
    # Unsigned, even a malformed form is refused for its missing signature (checked first).
    status, text = post(b"Action=ListTopics&Version=1999-01-01")
    assert status == 403 and "<Code>MissingAuthenticationToken</Code>" in text
    status, text = signed_form_post(server.url, alice, b"Action=ListTopics&Version=1999-01-01")
    assert status == 400 and "Version" in text
    status, text = signed_form_post(server.url, alice, b"Action=ListTopics")
    assert status == 200 and "<ListTopicsResponse" in text  # the credential scope names sns
    status, text = signed_form_post(server.url, alice, b"Action=ListTopics&Version=2010-08-01")
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in text  # signed for sns
    status, text = signed_form_post(server.url, alice, b"\xff\xfe=\x00")
    assert status == 400 and "<ErrorResponse" in text


def signed_form_post(url: str, key, body: bytes, service: str = "sns") -> tuple[int, str]:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    req = botocore.awsrequest.AWSRequest(
        method="POST",
        url=url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    creds = botocore.credentials.Credentials(key.access_key_id, key.secret_access_key)
    botocore.auth.SigV4Auth(creds, service, "us-east-1").add_auth(req)
    prepared = urllib.request.Request(url + "/", data=body, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(prepared) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_unknown_action(server, alice):
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    body = "Action=ListTopicz&Version=2010-03-31"
    req = botocore.awsrequest.AWSRequest(
        method="POST",
        url=server.url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    creds = botocore.credentials.Credentials(alice.access_key_id, alice.secret_access_key)
    botocore.auth.SigV4Auth(creds, "sns", "us-east-1").add_auth(req)
    prepared = urllib.request.Request(server.url + "/", data=body.encode(), headers=dict(req.headers.items()))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(prepared)
    text = err.value.read().decode()
    assert err.value.code == 400 and "<Code>InvalidAction</Code>" in text and "ListTopics" in text


def test_unsubscribe_link_and_api(server, alice, store):
    sns = sns_client(server.url, alice)
    arn = sns.create_topic(Name="u")["TopicArn"]
    sub = sns.subscribe(
        TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:1/", ReturnSubscriptionArn=True
    )
    sub_arn = sub["SubscriptionArn"]
    sns.confirm_subscription(TopicArn=arn, Token=_token(store, sub_arn))
    with urllib.request.urlopen(f"{server.url}/?Action=Unsubscribe&SubscriptionArn={sub_arn}") as resp:
        assert resp.status == 200
    assert sns.list_subscriptions()["Subscriptions"] == []
    assert len(_pending(store, "UnsubscribeConfirmation")) == 1
    with pytest.raises(ClientError) as err:
        sns.unsubscribe(SubscriptionArn=sub_arn)
    assert _code(err.value) == "NotFound"


def test_links_ignore_the_request_host_header(server, alice, store):
    """A caller cannot make the service sign a SubscribeURL that points at another host."""
    sns = sns_client(server.url, alice)
    arn = sns.create_topic(Name="h")["TopicArn"]

    def evil_host(request, **kwargs):
        request.headers["Host"] = "evil.example"  # signed as such: the signature holds

    sns.meta.events.register_first("before-sign.sns.Subscribe", evil_host)
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:1/")
    payload = json.loads(_pending(store, "SubscriptionConfirmation")[0]["payload"])
    assert payload["SubscribeURL"].startswith(server.url + "/") and "evil" not in payload["SubscribeURL"]
