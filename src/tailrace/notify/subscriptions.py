"""Subscriptions: Subscribe with its confirmation handshake, ConfirmSubscription, Unsubscribe,
the listings and the subscription attributes (part of TopicService, see topics.py)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping

import sqlalchemy as sa

from tailrace.notify import arns, filterpolicy, policy
from tailrace.notify.errors import InvalidParameter
from tailrace.notify.messages import compact_json, enqueue
from tailrace.notify.tables import deliveries, reading, subscriptions, topics
from tailrace.notify.topicbase import (
    CONFIRMED_BY_LINK,
    HTTP_PROTOCOLS,
    PAGE,
    PENDING_ARN,
    Scope,
    TopicBase,
    after_token,
    page_token,
    with_attribute,
)
from tailrace.notify.wakeup import announce

SUBSCRIPTION_SETTABLE = frozenset(
    {"RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "DeliveryPolicy", "RedrivePolicy"}
)


class SubscriptionOps(TopicBase):
    """The subscription operations of TopicService."""

    def subscribe(
        self,
        scope: Scope,
        topic_arn: str,
        protocol: str,
        endpoint: str | None,
        attributes: Mapping[str, str] | None = None,
        *,
        return_arn: bool = False,
        base_url: str | None = None,
    ) -> str:
        protocol = protocol.lower()
        if protocol not in self.protocols:
            raise InvalidParameter(
                f"Amazon SNS does not support this protocol string: {protocol!r} "
                f"(this service delivers to {', '.join(sorted(self.protocols))})"
            )
        if not endpoint:
            raise InvalidParameter("Endpoint is required for protocol " + protocol)
        if protocol in HTTP_PROTOCOLS and not endpoint.lower().startswith(f"{protocol}://"):
            raise InvalidParameter(f"Endpoint: {endpoint[:200]!r} must be a {protocol}:// URL")
        if self.check_endpoint is not None:
            self.check_endpoint(protocol, endpoint)
        if self.check_owned_endpoint is not None:
            # Before the write transaction: the check may claim a bucket (a write of its own).
            with reading(self.engine) as conn:
                owner = self._topic_row(conn, scope, topic_arn)["owner"]
            self.check_owned_endpoint(owner, protocol, endpoint)
        attrs = {k: self._check_subscription_attribute(k, v) for k, v in (attributes or {}).items()}
        now = self.clock.now()
        needs_confirmation = protocol in CONFIRMED_BY_LINK
        with self.engine.begin() as conn:
            topic = self._topic_row(conn, scope, topic_arn)
            existing = (
                conn.execute(
                    sa.select(subscriptions).where(
                        subscriptions.c.topic_arn == topic_arn,
                        subscriptions.c.protocol == protocol,
                        subscriptions.c.endpoint == endpoint,
                    )
                )
                .mappings()
                .first()
            )
            if existing is not None:
                if existing["confirmed"] or return_arn:
                    return str(existing["arn"])
                return PENDING_ARN
            arn = f"{topic_arn}:{uuid.uuid4()}"
            token = secrets.token_hex(64)
            conn.execute(
                subscriptions.insert().values(
                    arn=arn,
                    topic_arn=topic_arn,
                    owner=topic["owner"],
                    protocol=protocol,
                    endpoint=endpoint,
                    attributes=compact_json(attrs),
                    confirmed=not needs_confirmation,
                    token=token,
                    created_at=now,
                )
            )
            if needs_confirmation:
                base = (base_url or self.public_url).rstrip("/")
                enqueue(
                    conn,
                    kind="SubscriptionConfirmation",
                    sub={
                        "arn": arn,
                        "protocol": protocol,
                        "endpoint": endpoint,
                        "attributes": compact_json(attrs),
                    },
                    topic=topic,
                    payload={
                        "Token": token,
                        "Message": (
                            f"You have chosen to subscribe to the topic {topic_arn}.\n"
                            "To confirm the subscription, visit the SubscribeURL included in this message."
                        ),
                        "SubscribeURL": f"{base}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}",
                        "BaseURL": base,
                    },
                    message_id=str(uuid.uuid4()),
                    now=now,
                )
                announce(conn)
        self._committed()
        return arn if (return_arn or not needs_confirmation) else PENDING_ARN

    def confirm(self, topic_arn: str, token: str) -> str:
        """Confirm by token. The token is the credential (a subscriber's GET on SubscribeURL
        carries no signature), so the caller's owner is not consulted."""
        arns.parse_arn(topic_arn)
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    sa.select(subscriptions).where(
                        subscriptions.c.token == token, subscriptions.c.topic_arn == topic_arn
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise InvalidParameter("Token")
            if not row["confirmed"]:
                conn.execute(
                    subscriptions.update().where(subscriptions.c.arn == row["arn"]).values(confirmed=True)
                )
        return str(row["arn"])

    def unsubscribe(self, scope: Scope, sub_arn: str, *, base_url: str | None = None) -> None:
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = self._subscription_row(conn, scope, sub_arn)
            conn.execute(subscriptions.delete().where(subscriptions.c.arn == sub_arn))
            conn.execute(
                deliveries.delete().where(
                    deliveries.c.subscription_arn == sub_arn, deliveries.c.status == "pending"
                )
            )
            if row["protocol"] in HTTP_PROTOCOLS and row["confirmed"]:
                topic = (
                    conn.execute(sa.select(topics).where(topics.c.arn == row["topic_arn"])).mappings().first()
                )
                base = (base_url or self.public_url).rstrip("/")
                enqueue(
                    conn,
                    kind="UnsubscribeConfirmation",
                    sub=dict(row),
                    topic=topic,
                    payload={
                        "Token": row["token"],
                        "Message": (
                            f"You have chosen to deactivate subscription {sub_arn}.\n"
                            "To cancel this operation and restore the subscription, visit the SubscribeURL "
                            "included in this message."
                        ),
                        "SubscribeURL": (
                            f"{base}/?Action=ConfirmSubscription&TopicArn={row['topic_arn']}&Token={row['token']}"
                        ),
                        "BaseURL": base,
                    },
                    message_id=str(uuid.uuid4()),
                    now=now,
                )
                announce(conn)
        self._committed()

    def unsubscribe_by_link(self, sub_arn: str) -> None:
        """The UnsubscribeURL of a notification: the subscription ARN (with its random id) is the
        credential, as for SNS's own link."""
        self.unsubscribe(Scope(owner=None), sub_arn)

    def list_subscriptions(
        self, scope: Scope, topic_arn: str | None = None, next_token: str | None = None
    ) -> tuple[list[dict[str, str]], str | None]:
        after = after_token(next_token)
        query = sa.select(subscriptions).order_by(subscriptions.c.arn).limit(PAGE + 1)
        with reading(self.engine) as conn:
            if topic_arn is not None:
                self._topic_row(conn, scope, topic_arn)
                query = query.where(subscriptions.c.topic_arn == topic_arn)
            if scope.owner is not None:
                query = query.where(subscriptions.c.owner == scope.owner)
            if after:
                query = query.where(subscriptions.c.arn > after)
            rows = list(conn.execute(query).mappings())
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        out = [
            {
                "SubscriptionArn": r["arn"] if r["confirmed"] else "PendingConfirmation",
                "Owner": arns.account_for(r["owner"]),
                "Protocol": r["protocol"],
                "Endpoint": r["endpoint"],
                "TopicArn": r["topic_arn"],
            }
            for r in rows
        ]
        return out, page_token(rows[-1]["arn"]) if more else None

    def subscription_attributes(self, scope: Scope, sub_arn: str) -> dict[str, str]:
        with reading(self.engine) as conn:
            row = self._subscription_row(conn, scope, sub_arn)
            topic = conn.execute(
                sa.select(topics.c.attributes).where(topics.c.arn == row["topic_arn"])
            ).first()
        stored = json.loads(row["attributes"])
        topic_attrs = json.loads(topic[0]) if topic else {}
        out = {
            "SubscriptionArn": row["arn"],
            "TopicArn": row["topic_arn"],
            "Owner": arns.account_for(row["owner"]),
            "Protocol": row["protocol"],
            "Endpoint": row["endpoint"],
            "PendingConfirmation": "false" if row["confirmed"] else "true",
            "ConfirmationWasAuthenticated": "false",
            "RawMessageDelivery": stored.get("RawMessageDelivery", "false"),
            "SubscriptionPrincipal": f"arn:aws:iam::{arns.account_for(row['owner'])}:user/{row['owner']}",
        }
        for key in ("FilterPolicy", "FilterPolicyScope", "DeliveryPolicy", "RedrivePolicy"):
            if key in stored:
                out[key] = stored[key]
        if "FilterPolicy" in stored and "FilterPolicyScope" not in stored:
            out["FilterPolicyScope"] = "MessageAttributes"
        if row["protocol"] in HTTP_PROTOCOLS:
            retry = policy.effective_retry(topic_attrs.get("DeliveryPolicy"), stored.get("DeliveryPolicy"))
            out["EffectiveDeliveryPolicy"] = compact_json(
                {
                    "healthyRetryPolicy": retry,
                    "sicklyRetryPolicy": None,
                    "throttlePolicy": None,
                    "guaranteed": False,
                }
            )
        return out

    def _check_subscription_attribute(self, name: str, value: str) -> str:
        if name not in SUBSCRIPTION_SETTABLE:
            raise InvalidParameter(f"AttributeName: {name!r} is not a subscription attribute that can be set")
        if name == "RawMessageDelivery":
            if value.lower() not in ("true", "false"):
                raise InvalidParameter(f"RawMessageDelivery: {value!r}; expected true or false")
            return value.lower()
        if name == "FilterPolicy" and value:
            filterpolicy.parse_policy(value)
        if name == "FilterPolicyScope" and value not in ("MessageAttributes", "MessageBody"):
            raise InvalidParameter(f"FilterPolicyScope: {value!r}; expected MessageAttributes or MessageBody")
        if name == "DeliveryPolicy" and value:
            policy.parse_subscription_policy(value)
        return value

    def set_subscription_attribute(self, scope: Scope, sub_arn: str, name: str, value: str) -> None:
        value = self._check_subscription_attribute(name, value or "")
        with self.engine.begin() as conn:
            row = self._subscription_row(conn, scope, sub_arn)
            attributes = with_attribute(row["attributes"], name, value)
            conn.execute(
                subscriptions.update().where(subscriptions.c.arn == sub_arn).values(attributes=attributes)
            )
