"""Messages as Publish takes them: SNS's checks and limits, per-protocol bodies
(MessageStructure=json), filter-policy matching, and the small formats topics.py writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tailrace.notify import filterpolicy
from tailrace.notify.errors import InvalidParameter, TagLimitExceeded

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
            value = base64.b64encode(blob).decode() if isinstance(blob, bytes) else str(blob)
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
