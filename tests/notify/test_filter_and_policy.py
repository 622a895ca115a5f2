"""Filter policies and delivery retry schedules: pure functions on cases; the topic service on
SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tailrace.clock import SystemClock
from tailrace.notify import filterpolicy as fp
from tailrace.notify.errors import AuthorizationError, InvalidParameter, NotFound
from tailrace.notify.policy import DEFAULT_RETRY, effective_retry, retry_delay
from tailrace.notify.topics import Scope, TopicService


def _attrs(**kw):
    out = {}
    for name, value in kw.items():
        if isinstance(value, list):
            out[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        elif isinstance(value, int | float):
            out[name] = {"DataType": "Number", "StringValue": str(value)}
        else:
            out[name] = {"DataType": "String", "StringValue": value}
    return out


@pytest.mark.parametrize(
    ("policy", "attrs", "expected"),
    [
        ({"code": ["5xx", "4xx"]}, _attrs(code="5xx"), True),
        ({"code": ["5xx"]}, _attrs(code="2xx"), False),
        ({"code": ["5xx"]}, {}, False),
        ({"n": [{"numeric": [">=", 500, "<", 600]}]}, _attrs(n=503), True),
        ({"n": [{"numeric": [">=", 500, "<", 600]}]}, _attrs(n=600), False),
        ({"n": [{"numeric": ["=", 5]}]}, _attrs(n="5"), False),  # a String is not a number
        ({"n": [5]}, _attrs(n=5), True),
        ({"host": [{"prefix": "web-"}]}, _attrs(host="web-3"), True),
        ({"host": [{"suffix": ".io"}]}, _attrs(host="a.io"), True),
        ({"host": [{"anything-but": ["db", "cache"]}]}, _attrs(host="db"), False),
        ({"host": [{"anything-but": ["db", "cache"]}]}, _attrs(host="web"), True),
        ({"host": [{"anything-but": {"prefix": "db"}}]}, _attrs(host="db-1"), False),
        ({"host": [{"equals-ignore-case": "WEB"}]}, _attrs(host="web"), True),
        ({"host": [{"exists": False}]}, {}, True),
        ({"host": [{"exists": True}]}, {}, False),
        ({"tags": ["red"]}, _attrs(tags=["blue", "red"]), True),
        ({"a": ["x"], "b": ["y"]}, _attrs(a="x", b="z"), False),  # keys are ANDed
    ],
)
def test_attribute_filters(policy, attrs, expected):
    assert fp.matches_attributes(fp.parse_policy(json.dumps(policy)), attrs) is expected


def test_body_filters_nest():
    policy = fp.parse_policy(json.dumps({"alarm": {"state": ["ALARM"]}, "n": [{"numeric": [">", 1]}]}))
    assert fp.matches_body(policy, {"alarm": {"state": "ALARM"}, "n": 2})
    assert not fp.matches_body(policy, {"alarm": {"state": "OK"}, "n": 2})
    assert not fp.matches_body(policy, "not an object")


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"a": "b"}',
        '{"a": []}',
        '{"a": [{"numeric": ["!", 1]}]}',
        '{"a": [{"numeric": ["<", 1, ">", 0]}]}',
        '{"a": [{"regex": "x"}]}',
        '{"a": [{"exists": "yes"}]}',
        json.dumps({f"k{i}": ["v"] for i in range(6)}),
        json.dumps({"a": list(range(20)), "b": list(range(20))}),
    ],
)
def test_invalid_policies_are_refused(text):
    with pytest.raises(InvalidParameter) as err:
        fp.parse_policy(text)
    assert err.value.message.startswith("Invalid parameter: Filter policy")


def test_default_retry_schedule_is_three_retries_twenty_seconds_apart():
    assert [retry_delay(DEFAULT_RETRY, n) for n in range(1, 5)] == [20.0, 20.0, 20.0, None]


def test_retry_phases_and_overrides():
    topic = json.dumps(
        {
            "http": {
                "defaultHealthyRetryPolicy": {
                    "numRetries": 6,
                    "numNoDelayRetries": 1,
                    "numMinDelayRetries": 1,
                    "numMaxDelayRetries": 1,
                    "minDelayTarget": 2,
                    "maxDelayTarget": 8,
                    "backoffFunction": "linear",
                }
            }
        }
    )
    p = effective_retry(topic, None)
    assert [retry_delay(p, n) for n in range(1, 8)] == [0.0, 2.0, 4.0, 6.0, 8.0, 8.0, None]
    sub = json.dumps({"healthyRetryPolicy": {"numRetries": 1, "minDelayTarget": 1, "maxDelayTarget": 1}})
    assert effective_retry(topic, sub)["numRetries"] == 1
    locked = json.loads(topic)
    locked["http"]["disableSubscriptionOverrides"] = True
    assert effective_retry(json.dumps(locked), sub)["numRetries"] == 6


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_topic_service_on_each_database(backend, tmp_path):
    from notify_helpers import engine_for

    with engine_for(backend, tmp_path) as engine:
        svc = TopicService(engine, SystemClock())
        alice, bob = Scope(owner="alice"), Scope(owner="bob")
        arn = svc.create_topic(alice, "t")
        assert svc.create_topic(alice, "t") == arn
        sub = svc.subscribe(alice, arn, "http", "http://127.0.0.1:1/", return_arn=True)
        with engine.connect() as conn:
            from tailrace.notify.tables import subscriptions

            token = (
                conn.execute(subscriptions.select().where(subscriptions.c.arn == sub))
                .mappings()
                .one()["token"]
            )
        assert svc.confirm(arn, token) == sub
        svc.publish(alice, arn, "hello")
        with pytest.raises(AuthorizationError):
            svc.publish(bob, arn, "x")
        svc.delete_topic(alice, arn)
        with pytest.raises(NotFound):
            svc.topic_attributes(alice, arn)
