"""Messages as Publish takes them: SNS's checks and limits, per-protocol bodies
(MessageStructure=json), filter-policy matching, and the small formats topics.py writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tailrace.notify import filterpolicy, policy
from tailrace.notify.errors import InvalidParameter, TagLimitExceeded
from tailrace.notify.tables import deliveries

MAX_MESSAGE_BYTES = 262_144
MAX_ATTRIBUTES = 10
MAX_TAGS = 50


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def sns_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def default_access_policy(topic_arn: str, account: str) -> str:
    return compact_json(
        {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["SNS:Publish", "SNS:Subscribe", "SNS:GetTopicAttributes"],
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
                }
            ],
        }
    )


def check_tags(tags: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    if len(tags) > MAX_TAGS:
        raise TagLimitExceeded(f"Could not complete request: at most {MAX_TAGS} tags per resource")
    out = []
    for t in tags:
        key, value = t.get("Key", ""), t.get("Value", "")
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise InvalidParameter(
                f"Tags: key {key[:40]!r} must be 1-128 characters and its value at most 256"
            )
        out.append({"Key": key, "Value": value})
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedMessage:
    message: str
    per_protocol: Mapping[str, str] | None
    subject: str | None
    attributes: dict[str, dict[str, str]]
    """As delivered in a notification: name -> {"Type", "Value"}."""
    raw_attributes: Mapping[str, Mapping[str, Any]]

    def for_protocol(self, protocol: str) -> str:
        if self.per_protocol is None:
            return self.message
        return self.per_protocol.get(protocol, self.per_protocol["default"])


_ATTR_TYPES = ("String", "Number", "Binary", "String.Array")


def prepare_message(
    message: str,
    *,
    subject: str | None = None,
    structure: str | None = None,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> PreparedMessage:
    """Publish's checks, SNS's limits. :raises InvalidParameter: naming the parameter."""
    if not message:
        raise InvalidParameter("Empty message")
    size = len(message.encode("utf-8"))
    delivered: dict[str, dict[str, str]] = {}
    attributes = attributes or {}
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidParameter(f"MessageAttributes: at most {MAX_ATTRIBUTES} attributes")
    for name, attr in attributes.items():
        if not name or len(name) > 256 or name.startswith(("AWS.", "Amazon.")) or ".." in name:
            raise InvalidParameter(f"MessageAttributes: attribute name {name[:60]!r} is not allowed")
        kind = str(attr.get("DataType", ""))
        base = kind.split(".", 1)[0] if not kind.startswith("String.Array") else "String.Array"
        if base not in _ATTR_TYPES:
            raise InvalidParameter(
                f"The message attribute '{name}' has an invalid message attribute type {kind!r}; "
                "expected String, Number, Binary or String.Array"
            )
        if base == "Binary":
            blob = attr.get("BinaryValue")
            if blob is None:
                raise InvalidParameter(
                    f"The message attribute '{name}' with type 'Binary' must use field 'Binary'"
                )
            value: Any = base64.b64encode(blob).decode() if isinstance(blob, bytes) else str(blob)
        else:
            value = attr.get("StringValue")
            if value is None:
                raise InvalidParameter(
                    f"The message attribute '{name}' must contain non-empty message attribute value"
                )
            if base == "Number":
                try:
                    float(value)
                except ValueError:
                    raise InvalidParameter(
                        f"The message attribute '{name}' with type 'Number' has a non-number value"
                    )
            if base == "String.Array":
                try:
                    ok = isinstance(json.loads(value), list)
                except ValueError:
                    ok = False
                if not ok:
                    raise InvalidParameter(
                        f"The message attribute '{name}' with type 'String.Array' is not a JSON array"
                    )
        size += len(name.encode()) + len(kind.encode()) + len(value.encode())
        delivered[name] = {"Type": kind, "Value": value}
    if size > MAX_MESSAGE_BYTES:
        raise InvalidParameter(
            f"Message too long: {size} bytes with attributes; the limit is {MAX_MESSAGE_BYTES}"
        )
    if subject is not None and (
        not subject or len(subject) > 100 or any(ord(c) < 32 or ord(c) > 126 for c in subject)
    ):
        raise InvalidParameter("Subject: 1-100 printable ASCII characters, no line breaks")
    per_protocol: dict[str, str] | None = None
    if structure is not None:
        if structure != "json":
            raise InvalidParameter(f"MessageStructure: {structure!r}; the only structure is json")
        try:
            parsed = json.loads(message)
        except ValueError:
            raise InvalidParameter("Message Structure - JSON message body failed to parse")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("default"), str):
            raise InvalidParameter("Message Structure - No default entry in JSON message body")
        if not all(isinstance(v, str) for v in parsed.values()):
            raise InvalidParameter("Message Structure - every protocol's message must be a string")
        per_protocol = parsed
    return PreparedMessage(
        message=message,
        per_protocol=per_protocol,
        subject=subject,
        attributes=delivered,
        raw_attributes=attributes,
    )


def passes_filter(sub_attrs: Mapping[str, str], prepared: PreparedMessage) -> bool:
    text = sub_attrs.get("FilterPolicy")
    if not text:
        return True
    rules = json.loads(text)
    if sub_attrs.get("FilterPolicyScope") == "MessageBody":
        try:
            body = json.loads(
                prepared.message if prepared.per_protocol is None else prepared.per_protocol["default"]
            )
        except ValueError:
            return False
        return filterpolicy.matches_body(rules, body)
    flat = {
        name: {"DataType": a["Type"], "StringValue": a["Value"]} for name, a in prepared.attributes.items()
    }
    return filterpolicy.matches_attributes(rules, flat)


def enqueue(
    conn: sa.Connection,
    *,
    kind: str,
    sub: Mapping[str, Any],
    topic: Any,
    payload: dict[str, Any],
    message_id: str,
    now: datetime,
    batch: list[dict[str, Any]] | None = None,
) -> None:
    """Insert one delivery, or append it to `batch` (Publish inserts a message's together)."""
    topic_attrs = json.loads(topic["attributes"]) if topic is not None else {}
    sub_attrs = json.loads(sub.get("attributes") or "{}")
    retry = policy.effective_retry(topic_attrs.get("DeliveryPolicy"), sub_attrs.get("DeliveryPolicy"))
    payload = {
        **payload,
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": topic["arn"] if topic is not None else sub["topic_arn"],
        "Timestamp": sns_time(now),
        "SignatureVersion": topic_attrs.get("SignatureVersion", "1"),
        "Raw": sub_attrs.get("RawMessageDelivery") == "true" and kind == "Notification",
    }
    row = _pending(
        message_id,
        kind,
        sub,
        topic_arn=payload["TopicArn"],
        owner=topic["owner"] if topic is not None else sub["owner"],
        payload=compact_json(payload),
        retry=compact_json(retry),
        now=now,
    )
    if batch is None:
        conn.execute(deliveries.insert(), [row])
    else:
        batch.append(row)


def notification_rows(
    topic: Mapping[str, Any],
    subs: Iterable[Mapping[Any, Any]],
    prepared: PreparedMessage,
    *,
    message_id: str,
    now: datetime,
    base_url: str,
) -> list[dict[str, Any]]:
    """The delivery rows of one published message, one per subscription its filter lets through:
    the rows `enqueue` writes, with what they share (the topic's attributes, the payload per
    protocol and raw flag, the retry policy per DeliveryPolicy) worked out once per message."""
    topic_attrs = json.loads(topic["attributes"])
    common: dict[str, Any] = {"BaseURL": base_url}
    if prepared.subject is not None:
        common["Subject"] = prepared.subject
    if prepared.attributes:
        common["MessageAttributes"] = prepared.attributes
    common.update(
        Type="Notification",
        MessageId=message_id,
        TopicArn=topic["arn"],
        Timestamp=sns_time(now),
        SignatureVersion=topic_attrs.get("SignatureVersion", "1"),
    )
    payloads: dict[tuple[str, bool], str] = {}
    retries: dict[str | None, str] = {}
    rows = []
    for sub in subs:
        sub_attrs = json.loads(sub.get("attributes") or "{}")
        if not passes_filter(sub_attrs, prepared):
            continue
        protocol = sub["protocol"]
        raw = sub_attrs.get("RawMessageDelivery") == "true"
        payload = payloads.get((protocol, raw))
        if payload is None:
            message = prepared.for_protocol(protocol)
            payload = payloads[(protocol, raw)] = compact_json({**common, "Message": message, "Raw": raw})
        sub_policy = sub_attrs.get("DeliveryPolicy")
        retry = retries.get(sub_policy)
        if retry is None:
            effective = policy.effective_retry(topic_attrs.get("DeliveryPolicy"), sub_policy)
            retry = retries[sub_policy] = compact_json(effective)
        rows.append(
            _pending(
                message_id,
                "Notification",
                sub,
                topic_arn=topic["arn"],
                owner=topic["owner"],
                payload=payload,
                retry=retry,
                now=now,
            )
        )
    return rows


def _pending(
    message_id: str,
    kind: str,
    sub: Mapping[str, Any],
    *,
    topic_arn: str,
    owner: str,
    payload: str,
    retry: str,
    now: datetime,
) -> dict[str, Any]:
    """A delivery row as it is first stored: pending, due now, never tried."""
    return {
        "message_id": message_id,
        "kind": kind,
        "subscription_arn": sub["arn"],
        "topic_arn": topic_arn,
        "owner": owner,
        "protocol": sub["protocol"],
        "endpoint": sub["endpoint"],
        "payload": payload,
        "policy": retry,
        "status": "pending",
        "attempts": 0,
        "next_at": now,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }
