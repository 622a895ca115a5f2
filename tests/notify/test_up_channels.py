"""`tailrace up` wires the non-HTTP deliveries: with `[smtp]` in tailrace.toml an email
subscription gets its confirmation mail, a redis subscription its messages on the channel and a
store subscription one object per message in the owner's bucket; the Query route still answers
an unsigned POST before its body."""

from __future__ import annotations

import json
import uuid

import redis
from notify_helpers import sns_client
from test_channels import REDIS_URL, Mailbox
from test_query_auth import FORM, _answer_without_body
from test_sns_up_e2e import Up, _Key, _until

from tailrace.storage import Storage


def test_email_redis_and_store_through_tailrace_up(tmp_path):
    box = Mailbox().start()
    up = Up(tmp_path)
    (tmp_path / "tailrace.toml").write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {box.port}\nfrom_address = "up@example.org"\n'
    )
    channel = f"up-{uuid.uuid4().hex[:8]}"
    listener = redis.Redis.from_url(REDIS_URL).pubsub()
    listener.subscribe(channel)
    listener.get_message(timeout=5)
    try:
        up.start()
        status, _ = _answer_without_body(up.url, {"Content-Type": FORM}, chunked=True)
        assert status == 403
        creds = json.loads((up.home / "credentials.json").read_text())
        sns = sns_client(up.url, _Key(creds))
        arn = sns.create_topic(Name="up-channels")["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="ops@example.org")
        _until("the confirmation mail", lambda: box.mails)
        assert box.mails[0]["From"] == "up@example.org"
        assert "Action=ConfirmSubscription" in box.mails[0].get_content()
        sns.subscribe(TopicArn=arn, Protocol="redis", Endpoint=f"{REDIS_URL}#{channel}")
        bucket = f"up-archive-{uuid.uuid4().hex[:6]}"
        sns.subscribe(TopicArn=arn, Protocol="store", Endpoint=f"s3://{bucket}/sns/")
        mid = sns.publish(TopicArn=arn, Message="through up")["MessageId"]

        def on_redis():
            got = listener.get_message(timeout=1)
            return got if got and got["type"] == "message" else None

        doc = json.loads(_until("the redis message", on_redis)["data"])
        assert doc["MessageId"] == mid and doc["Message"] == "through up"
        store = Storage(home=up.home)
        keys = _until("the stored message", lambda: list(store.list_files(f"s3://{bucket}/sns/")))
        assert keys[0].key.endswith(f"/{mid}.json")
        assert len(box.mails) == 1  # the email subscription was never confirmed: no notification
    finally:
        listener.close()
        up.stop()
        box.stop()
