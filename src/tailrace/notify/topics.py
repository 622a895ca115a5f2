"""Topics and subscriptions: what the SNS API does, over the notification tables.

Every call names the caller's owner (None: unrestricted, authentication off). A topic belongs to
the owner that created it; its ARN carries that owner's account, and an ARN of another account
is refused with AuthorizationError before anything is looked up, so nobody learns whether
another owner's topic exists. Publish commits the message's deliveries in the same transaction
and returns only then; the delivery loop (delivery.py) sends them.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock
from tailrace.events.model import MessagePublished
from tailrace.notify import arns, filterpolicy, policy
from tailrace.notify.errors import (
    AuthorizationError,
    InvalidParameter,
    NotFound,
    ResourceNotFound,
    TagLimitExceeded,
)
from tailrace.notify.events import Sink
from tailrace.notify.messages import (
    MAX_TAGS,
    PreparedMessage,
    check_tags,
    compact_json,
    default_access_policy,
    enqueue,
    passes_filter,
    prepare_message,
)
from tailrace.notify.tables import create_tables, deliveries, reading, subscriptions, topics
from tailrace.notify.wakeup import announce

DEFAULT_OWNER = "default"
PAGE = 100
PENDING_ARN = "pending confirmation"
TOPIC_SETTABLE = frozenset(
    {"DisplayName", "Policy", "DeliveryPolicy", "SignatureVersion", "TracingConfig", "KmsMasterKeyId"}
)
SUBSCRIPTION_SETTABLE = frozenset(
    {"RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "DeliveryPolicy", "RedrivePolicy"}
)
HTTP_PROTOCOLS = frozenset({"http", "https"})

EndpointCheck = Callable[[str, str], None]
"""(protocol, endpoint) -> None; raises InvalidParameter for an endpoint this service refuses."""
OwnedEndpointCheck = Callable[[str, str, str], None]
"""(owner, protocol, endpoint) -> None: as EndpointCheck, for endpoints that belong to an owner
(an s3:// prefix in the owner's buckets); raises InvalidParameter or AuthorizationError."""
CONFIRMED_BY_LINK = frozenset({"http", "https", "email", "email-json"})
"""Subscriptions that wait for their SubscribeURL; the others are confirmed at Subscribe, as SNS
confirms same-account SQS and Lambda subscriptions."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Scope:
    """Who calls and from which region (the SigV4 credential scope's)."""

    owner: str | None
    region: str = arns.DEFAULT_REGION

    @property
    def owner_for_new(self) -> str:
        return self.owner if self.owner is not None else DEFAULT_OWNER


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _untoken(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return base64.urlsafe_b64decode(text.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("NextToken: not a token this service issued")


class TopicService:
    """The SNS operations. `protocols` are the subscription protocols this installation delivers."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock,
        *,
        protocols: Sequence[str] = ("http", "https"),
        check_endpoint: EndpointCheck | None = None,
        public_url: str = "http://127.0.0.1:8040",
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.protocols = frozenset(protocols)
        self.check_endpoint = check_endpoint
        self.public_url = public_url.rstrip("/")
        self.check_owned_endpoint: OwnedEndpointCheck | None = None
        self.on_commit: list[Callable[[], None]] = []
        """Called after a commit that added deliveries (the delivery loop's wake-up)."""
        self.emit: Sink | None = None
        """Where MessagePublished events go (tailrace.notify.events.store_sink), if anywhere."""
        create_tables(engine)

    def _committed(self) -> None:
        for fn in self.on_commit:
            fn()

    def _published(self, topic: Any, message_id: str, prepared: PreparedMessage) -> None:
        if self.emit is None:
            return
        try:
            self.emit(
                MessagePublished(
                    at=self.clock.now(),
                    owner=topic["owner"],
                    topic_arn=topic["arn"],
                    message_id=message_id,
                    subject=prepared.subject,
                    message=prepared.message,
                    attributes=prepared.attributes,
                )
            )
        except Exception:  # the message is committed; a lost event is only logged
            logging.getLogger("tailrace.notify").exception("could not record message.published")

    # --- access ------------------------------------------------------------------------------------

    def _arn(self, scope: Scope, text: str, what: str = "TopicArn") -> arns.Arn:
        arn = arns.parse_arn(text, what=what)
        if scope.owner is not None and arn.account != arns.account_for(scope.owner):
            raise AuthorizationError(
                f"User: {scope.owner} is not authorized to access {what} {text}: it belongs to another account"
            )
        return arn

    def _topic_row(self, conn: sa.Connection, scope: Scope, topic_arn: str) -> Any:
        arn = self._arn(scope, topic_arn)
        if arn.sub is not None:
            raise InvalidParameter(f"TopicArn: {topic_arn} names a subscription, not a topic")
        query = sa.select(topics).where(topics.c.arn == topic_arn)
        if scope.owner is not None:
            query = query.where(topics.c.owner == scope.owner)
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("Topic does not exist")
        return row

    def _subscription_row(self, conn: sa.Connection, scope: Scope, sub_arn: str) -> Any:
        arn = self._arn(scope, sub_arn, "SubscriptionArn")
        if arn.sub is None:
            raise InvalidParameter(f"SubscriptionArn: {sub_arn} names a topic, not a subscription")
        query = sa.select(subscriptions).where(subscriptions.c.arn == sub_arn)
        if scope.owner is not None:
            query = query.where(subscriptions.c.owner == scope.owner)
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("Subscription does not exist")
        return row

    # --- topics ------------------------------------------------------------------------------------

    def create_topic(
        self,
        scope: Scope,
        name: str,
        attributes: Mapping[str, str] | None = None,
        tags: Sequence[Mapping[str, str]] = (),
    ) -> str:
        """The topic's ARN; creating an existing name again returns the same ARN."""
        arns.check_topic_name(name)
        owner = scope.owner_for_new
        attrs = {}
        for key, value in (attributes or {}).items():
            if key == "FifoTopic":
                if value.lower() == "true":
                    raise InvalidParameter("Attributes: FIFO topics are not supported by this service")
                continue
            attrs[key] = self._check_topic_attribute(key, value)
        checked_tags = check_tags(tags)
        arn = arns.topic_arn(arns.check_region(scope.region), arns.account_for(owner), name)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(topics).where(topics.c.arn == arn)).mappings().first()
            if row is not None:
                return arn
            try:
                conn.execute(
                    topics.insert().values(
                        arn=arn,
                        owner=owner,
                        name=name,
                        region=arns.check_region(scope.region),
                        attributes=compact_json(attrs),
                        tags=compact_json(checked_tags),
                        created_at=self.clock.now(),
                    )
                )
            except sa.exc.IntegrityError:
                pass  # created concurrently: same name, same ARN
        return arn

    def delete_topic(self, scope: Scope, topic_arn: str) -> None:
        """Deleting a topic that does not exist succeeds, as in SNS."""
        try:
            with self.engine.begin() as conn:
                self._topic_row(conn, scope, topic_arn)
                conn.execute(subscriptions.delete().where(subscriptions.c.topic_arn == topic_arn))
                conn.execute(
                    deliveries.delete().where(
                        deliveries.c.topic_arn == topic_arn, deliveries.c.status == "pending"
                    )
                )
                conn.execute(topics.delete().where(topics.c.arn == topic_arn))
        except NotFound:
            return

    def list_topics(self, scope: Scope, next_token: str | None = None) -> tuple[list[str], str | None]:
        after = _untoken(next_token)
        query = sa.select(topics.c.arn).order_by(topics.c.arn).limit(PAGE + 1)
        if scope.owner is not None:
            query = query.where(topics.c.owner == scope.owner)
        if after:
            query = query.where(topics.c.arn > after)
        with reading(self.engine) as conn:
            found = [r[0] for r in conn.execute(query)]
        more = len(found) > PAGE
        found = found[:PAGE]
        return found, _token(found[-1]) if more else None

    def topic_attributes(self, scope: Scope, topic_arn: str) -> dict[str, str]:
        with reading(self.engine) as conn:
            row = self._topic_row(conn, scope, topic_arn)
            counts = {
                confirmed: n
                for confirmed, n in conn.execute(
                    sa.select(subscriptions.c.confirmed, sa.func.count())
                    .where(subscriptions.c.topic_arn == topic_arn)
                    .group_by(subscriptions.c.confirmed)
                )
            }
        stored = json.loads(row["attributes"])
        account = arns.parse_arn(topic_arn).account
        out = {
            "TopicArn": topic_arn,
            "Owner": account,
            "Policy": stored.get("Policy") or default_access_policy(topic_arn, account),
            "DisplayName": stored.get("DisplayName", ""),
            "SubscriptionsConfirmed": str(counts.get(True, 0)),
            "SubscriptionsPending": str(counts.get(False, 0)),
            "SubscriptionsDeleted": "0",
            "EffectiveDeliveryPolicy": compact_json(policy.default_topic_policy()),
        }
        for key in ("DeliveryPolicy", "SignatureVersion", "TracingConfig", "KmsMasterKeyId"):
            if key in stored:
                out[key] = stored[key]
        if "DeliveryPolicy" in stored:
            merged = policy.default_topic_policy()
            merged["http"]["defaultHealthyRetryPolicy"] = policy.effective_retry(
                stored["DeliveryPolicy"], None
            )
            out["EffectiveDeliveryPolicy"] = compact_json(merged)
        return out

    def _check_topic_attribute(self, name: str, value: str) -> str:
        if name not in TOPIC_SETTABLE:
            raise InvalidParameter(f"AttributeName: {name!r} is not a topic attribute that can be set")
        if name == "DeliveryPolicy" and value:
            policy.parse_topic_policy(value)
        if name == "SignatureVersion" and value not in ("1", "2"):
            raise InvalidParameter(f"SignatureVersion: {value!r}; expected 1 (SHA1) or 2 (SHA256)")
        if name == "DisplayName" and len(value) > 100:
            raise InvalidParameter("DisplayName: at most 100 characters")
        if name == "Policy" and value:
            try:
                json.loads(value)
            except ValueError:
                raise InvalidParameter("Policy: not valid JSON")
        return value

    def set_topic_attribute(self, scope: Scope, topic_arn: str, name: str, value: str) -> None:
        value = self._check_topic_attribute(name, value or "")
        with self.engine.begin() as conn:
            row = self._topic_row(conn, scope, topic_arn)
            attributes = _with_attribute(row["attributes"], name, value)
            conn.execute(topics.update().where(topics.c.arn == topic_arn).values(attributes=attributes))

    # --- tags --------------------------------------------------------------------------------------

    def _tag_row(self, conn: sa.Connection, scope: Scope, resource_arn: str) -> Any:
        try:
            return self._topic_row(conn, scope, resource_arn)
        except NotFound:
            raise ResourceNotFound("Resource does not exist")

    def tag(self, scope: Scope, resource_arn: str, tags: Sequence[Mapping[str, str]]) -> None:
        new = check_tags(tags)
        with self.engine.begin() as conn:
            row = self._tag_row(conn, scope, resource_arn)
            merged = {t["Key"]: t["Value"] for t in json.loads(row["tags"])}
            merged.update({t["Key"]: t["Value"] for t in new})
            if len(merged) > MAX_TAGS:
                raise TagLimitExceeded(
                    f"Could not complete request: tag quota of per resource exceeded ({MAX_TAGS})"
                )
            value = [{"Key": k, "Value": v} for k, v in merged.items()]
            conn.execute(topics.update().where(topics.c.arn == resource_arn).values(tags=compact_json(value)))

    def untag(self, scope: Scope, resource_arn: str, keys: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            row = self._tag_row(conn, scope, resource_arn)
            value = [t for t in json.loads(row["tags"]) if t["Key"] not in set(keys)]
            conn.execute(topics.update().where(topics.c.arn == resource_arn).values(tags=compact_json(value)))

    def list_tags(self, scope: Scope, resource_arn: str) -> list[dict[str, str]]:
        with reading(self.engine) as conn:
            return list(json.loads(self._tag_row(conn, scope, resource_arn)["tags"]))

    # --- subscriptions -----------------------------------------------------------------------------

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
        after = _untoken(next_token)
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
        return out, _token(rows[-1]["arn"]) if more else None

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
            attributes = _with_attribute(row["attributes"], name, value)
            conn.execute(
                subscriptions.update().where(subscriptions.c.arn == sub_arn).values(attributes=attributes)
            )

    # --- publishing --------------------------------------------------------------------------------

    def publish(
        self,
        scope: Scope,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        structure: str | None = None,
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
        base_url: str | None = None,
    ) -> str:
        """Check the message, commit one delivery per matching confirmed subscription, return the
        MessageId. :raises InvalidParameter, NotFound, AuthorizationError:"""
        prepared = prepare_message(message, subject=subject, structure=structure, attributes=attributes)
        with self.engine.begin() as conn:
            topic = self._topic_row(conn, scope, topic_arn)
            message_id = self._publish(conn, topic, prepared, base_url=base_url)
        self._committed()
        self._published(topic, message_id, prepared)
        return message_id

    def publish_batch(
        self,
        scope: Scope,
        topic_arn: str,
        entries: Sequence[Mapping[str, Any]],
        *,
        base_url: str | None = None,
    ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        """(successful, failed) as PublishBatch reports them; all entries commit together."""
        ok: list[dict[str, str]] = []
        failed: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            topic = self._topic_row(conn, scope, topic_arn)
            for entry in entries:
                try:
                    prepared = prepare_message(
                        entry.get("Message", ""),
                        subject=entry.get("Subject"),
                        structure=entry.get("MessageStructure"),
                        attributes=entry.get("MessageAttributes"),
                    )
                except InvalidParameter as exc:
                    failed.append(
                        {"Id": entry["Id"], "Code": exc.code, "Message": exc.message, "SenderFault": True}
                    )
                    continue
                message_id = self._publish(conn, topic, prepared, base_url=base_url)
                ok.append({"Id": entry["Id"], "MessageId": message_id})
        self._committed()
        return ok, failed

    def publish_in(
        self, conn: sa.Connection, owner: str, topic_arn: str, message: str, *, subject: str | None = None
    ) -> str:
        """Publish inside the caller's transaction (an alarm's actions commit with its new state);
        the caller calls `_committed()` after its commit."""
        prepared = prepare_message(message, subject=subject)
        topic = self._topic_row(conn, Scope(owner=owner), topic_arn)
        return self._publish(conn, topic, prepared, base_url=None)

    def publish_internal(
        self, owner: str, topic_arn: str, message: str, *, subject: str | None = None
    ) -> str:
        """Publish on behalf of the service (alarm actions, pipeline SnsAlarm objects)."""
        return self.publish(Scope(owner=owner), topic_arn, message, subject=subject)

    def _publish(
        self, conn: sa.Connection, topic: Any, prepared: PreparedMessage, *, base_url: str | None
    ) -> str:
        now = self.clock.now()
        message_id = str(uuid.uuid4())
        subs = conn.execute(
            sa.select(subscriptions).where(
                subscriptions.c.topic_arn == topic["arn"], subscriptions.c.confirmed.is_(True)
            )
        ).mappings()
        batch: list[dict[str, Any]] = []
        for sub in subs:
            attrs = json.loads(sub["attributes"])
            if not passes_filter(attrs, prepared):
                continue
            payload: dict[str, Any] = {
                "Message": prepared.for_protocol(sub["protocol"]),
                "BaseURL": (base_url or self.public_url).rstrip("/"),
            }
            if prepared.subject is not None:
                payload["Subject"] = prepared.subject
            if prepared.attributes:
                payload["MessageAttributes"] = prepared.attributes
            enqueue(
                conn,
                kind="Notification",
                sub=dict(sub),
                topic=topic,
                payload=payload,
                message_id=message_id,
                now=now,
                batch=batch,
            )
        if batch:
            conn.execute(deliveries.insert(), batch)
            announce(conn)
        return message_id


def _with_attribute(stored_json: str, name: str, value: str) -> str:
    """A stored attribute map with `name` set to `value` (an empty value removes it), as JSON."""
    stored = json.loads(stored_json)
    if value:
        stored[name] = value
    else:
        stored.pop(name, None)
    return compact_json(stored)
