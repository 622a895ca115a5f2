"""The SNS Query API (2010-03-31): each Action's parsed input to TopicService and back to the
output shape botocore's `sns` model describes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tailrace.notify.errors import BatchError, InvalidParameter
from tailrace.notify.topics import Scope, TopicService

SERVICE = "sns"
VERSION = "2010-03-31"
SIGNING_NAME = "sns"
NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
MAX_BATCH = 10

Handler = Callable[[TopicService, Scope, dict[str, Any], str], Mapping[str, Any] | None]


def _create_topic(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    return {"TopicArn": svc.create_topic(scope, p["Name"], p.get("Attributes"), p.get("Tags", []))}


def _delete_topic(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> None:
    svc.delete_topic(scope, p["TopicArn"])


def _list_topics(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    found, token = svc.list_topics(scope, p.get("NextToken"))
    return {"Topics": [{"TopicArn": a} for a in found], "NextToken": token}


def _get_topic_attributes(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    return {"Attributes": svc.topic_attributes(scope, p["TopicArn"])}


def _set_topic_attributes(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> None:
    svc.set_topic_attribute(scope, p["TopicArn"], p["AttributeName"], p.get("AttributeValue", ""))


def _subscribe(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    arn = svc.subscribe(
        scope,
        p["TopicArn"],
        p["Protocol"],
        p.get("Endpoint"),
        p.get("Attributes"),
        return_arn=bool(p.get("ReturnSubscriptionArn")),
        base_url=base,
    )
    return {"SubscriptionArn": arn}


def _confirm(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    return {"SubscriptionArn": svc.confirm(p["TopicArn"], p["Token"])}


def _unsubscribe(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> None:
    svc.unsubscribe(scope, p["SubscriptionArn"], base_url=base)


def _list_subscriptions(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    subs, token = svc.list_subscriptions(scope, None, p.get("NextToken"))
    return {"Subscriptions": subs, "NextToken": token}


def _list_by_topic(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    subs, token = svc.list_subscriptions(scope, p["TopicArn"], p.get("NextToken"))
    return {"Subscriptions": subs, "NextToken": token}


def _get_sub_attributes(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    return {"Attributes": svc.subscription_attributes(scope, p["SubscriptionArn"])}


def _set_sub_attributes(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> None:
    svc.set_subscription_attribute(
        scope, p["SubscriptionArn"], p["AttributeName"], p.get("AttributeValue", "")
    )


def _publish(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    target = p.get("TopicArn") or p.get("TargetArn")
    if p.get("PhoneNumber") or not target:
        raise InvalidParameter("TopicArn or TargetArn: a topic ARN is required (SMS is not delivered)")
    message_id = svc.publish(
        scope,
        target,
        p["Message"],
        subject=p.get("Subject"),
        structure=p.get("MessageStructure"),
        attributes=p.get("MessageAttributes"),
        base_url=base,
    )
    return {"MessageId": message_id}


def _publish_batch(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    entries = p.get("PublishBatchRequestEntries") or []
    if not entries:
        raise BatchError("EmptyBatchRequest", "The batch request doesn't contain any entries")
    if len(entries) > MAX_BATCH:
        raise BatchError(
            "TooManyEntriesInBatchRequest",
            f"The batch request contains more entries than permissible ({MAX_BATCH})",
        )
    ids = [e["Id"] for e in entries]
    if len(set(ids)) != len(ids):
        raise BatchError(
            "BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id"
        )
    for i in ids:
        if not i or len(i) > 80 or not all(c.isalnum() or c in "-_" for c in i):
            raise BatchError(
                "InvalidBatchEntryId", f"The Id {i[:80]!r} must be 1-80 letters, digits, - and _"
            )
    total = sum(len(e.get("Message", "").encode()) for e in entries)
    if total > 262_144:
        raise BatchError(
            "BatchRequestTooLong",
            f"The length of all the messages put together ({total} bytes) is more than 262144",
        )
    ok, failed = svc.publish_batch(scope, p["TopicArn"], entries, base_url=base)
    return {"Successful": ok, "Failed": failed}


def _tag(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> None:
    svc.tag(scope, p["ResourceArn"], p["Tags"])


def _untag(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> None:
    svc.untag(scope, p["ResourceArn"], p["TagKeys"])


def _list_tags(svc: TopicService, scope: Scope, p: dict[str, Any], base: str) -> dict[str, Any]:
    return {"Tags": svc.list_tags(scope, p["ResourceArn"])}


ACTIONS: dict[str, Handler] = {
    "CreateTopic": _create_topic,
    "DeleteTopic": _delete_topic,
    "ListTopics": _list_topics,
    "GetTopicAttributes": _get_topic_attributes,
    "SetTopicAttributes": _set_topic_attributes,
    "Subscribe": _subscribe,
    "ConfirmSubscription": _confirm,
    "Unsubscribe": _unsubscribe,
    "ListSubscriptions": _list_subscriptions,
    "ListSubscriptionsByTopic": _list_by_topic,
    "GetSubscriptionAttributes": _get_sub_attributes,
    "SetSubscriptionAttributes": _set_sub_attributes,
    "Publish": _publish,
    "PublishBatch": _publish_batch,
    "TagResource": _tag,
    "UntagResource": _untag,
    "ListTagsForResource": _list_tags,
}


class SnsApi:
    """The SNS half of the Query endpoint (queryapp.py routes by Version)."""

    service = SERVICE
    version = VERSION
    signing_name = SIGNING_NAME
    namespace = NAMESPACE
    actions = ACTIONS

    def __init__(self, topics: TopicService) -> None:
        self.topics = topics

    def handle(
        self, action: str, scope: Scope, params: dict[str, Any], base_url: str
    ) -> Mapping[str, Any] | None:
        return ACTIONS[action](self.topics, scope, params, base_url)
