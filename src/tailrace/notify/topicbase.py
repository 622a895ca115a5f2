"""What topics.py and subscriptions.py share: the caller's Scope, page tokens, and the service's
settings and owner-checked lookups (see topics.py for the access rules)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock
from tailrace.events.model import MessagePublished
from tailrace.notify import arns
from tailrace.notify.errors import AuthorizationError, InvalidParameter, NotFound
from tailrace.notify.events import Sink
from tailrace.notify.messages import PreparedMessage, compact_json
from tailrace.notify.tables import create_tables, subscriptions, topics

DEFAULT_OWNER = "default"
_TOPIC = sa.select(topics).where(topics.c.arn == sa.bindparam("arn"))
_OWNED_TOPIC = _TOPIC.where(topics.c.owner == sa.bindparam("owner"))
"""Built once (every Publish looks its topic up)."""
PAGE = 100
PENDING_ARN = "pending confirmation"
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


def page_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def after_token(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return base64.urlsafe_b64decode(text.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("NextToken: not a token this service issued")


class TopicBase:
    """What the SNS operations share: settings, commit hooks, and owner-checked row lookups.
    `protocols` are the subscription protocols this installation delivers."""

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
        if scope.owner is None:
            row = conn.execute(_TOPIC, {"arn": topic_arn}).mappings().first()
        else:
            row = conn.execute(_OWNED_TOPIC, {"arn": topic_arn, "owner": scope.owner}).mappings().first()
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


def with_attribute(stored_json: str, name: str, value: str) -> str:
    """A stored attribute map with `name` set to `value` (an empty value removes it), as JSON."""
    stored = json.loads(stored_json)
    if value:
        stored[name] = value
    else:
        stored.pop(name, None)
    return compact_json(stored)
