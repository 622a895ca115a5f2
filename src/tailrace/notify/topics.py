"""Topics and subscriptions: what the SNS API does, over the notification tables.

Every call names the caller's owner (None: unrestricted, authentication off). A topic belongs to
the owner that created it; its ARN carries that owner's account, and an ARN of another account
is refused with AuthorizationError before anything is looked up, so nobody learns whether
another owner's topic exists. Publish commits the message's deliveries in the same transaction
and returns only then; the delivery loop (delivery.py) sends them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tailrace.notify import arns, policy
from tailrace.notify.errors import InvalidParameter, NotFound, ResourceNotFound, TagLimitExceeded
from tailrace.notify.messages import (
    MAX_TAGS,
    PreparedMessage,
    check_tags,
    compact_json,
    default_access_policy,
    notification_rows,
    prepare_message,
)
from tailrace.notify.subscriptions import SubscriptionOps
from tailrace.notify.tables import deliveries, reading, subscriptions, topics
from tailrace.notify.topicbase import (
    DEFAULT_OWNER,
    PAGE,
    EndpointCheck,
    OwnedEndpointCheck,
    Scope,
    after_token,
    page_token,
    with_attribute,
)
from tailrace.notify.wakeup import announce

__all__ = ["DEFAULT_OWNER", "EndpointCheck", "OwnedEndpointCheck", "Scope", "TopicService"]

_CONFIRMED_SUBSCRIPTIONS = sa.select(subscriptions).where(
    subscriptions.c.topic_arn == sa.bindparam("topic_arn"), subscriptions.c.confirmed.is_(True)
)
"""Built once: Publish runs it for every message."""

TOPIC_SETTABLE = frozenset(
    {"DisplayName", "Policy", "DeliveryPolicy", "SignatureVersion", "TracingConfig", "KmsMasterKeyId"}
)


class TopicService(SubscriptionOps):
    """The SNS operations (subscriptions in subscriptions.py, shared lookups in topicbase.py)."""

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
        after = after_token(next_token)
        query = sa.select(topics.c.arn).order_by(topics.c.arn).limit(PAGE + 1)
        if scope.owner is not None:
            query = query.where(topics.c.owner == scope.owner)
        if after:
            query = query.where(topics.c.arn > after)
        with reading(self.engine) as conn:
            found = [r[0] for r in conn.execute(query)]
        more = len(found) > PAGE
        found = found[:PAGE]
        return found, page_token(found[-1]) if more else None

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
            attributes = with_attribute(row["attributes"], name, value)
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
        message_id = str(uuid.uuid4())
        subs = conn.execute(_CONFIRMED_SUBSCRIPTIONS, {"topic_arn": topic["arn"]}).mappings()
        rows = notification_rows(
            topic,
            subs,
            prepared,
            message_id=message_id,
            now=self.clock.now(),
            base_url=(base_url or self.public_url).rstrip("/"),
        )
        if rows:  # one statement for the message's deliveries, committed with the caller's
            conn.execute(deliveries.insert(), rows)
            announce(conn)
        return message_id
