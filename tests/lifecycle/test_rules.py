"""Lifecycle rules: day counting, filters, overlap resolution, validation (S3's codes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tailrace.lifecycle.rules import (
    MIN_SIZE_VARIES,
    LifecycleError,
    ObjectMeta,
    abort_due,
    due_actions,
    due_after_days,
    parse_configuration,
    young_cutoff,
)
from tailrace.lifecycle.wire import parse_xml, to_json, to_xml

BIG = 1 << 20


def cfg(*rules: dict[str, Any], **kw: Any) -> Any:
    return parse_configuration({"Rules": list(rules)}, **kw)


def rule(rid: str = "r", **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": rid, "Status": "Enabled", "Filter": {"Prefix": ""}}
    out.update(fields)
    return out


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


# --- day counting ---------------------------------------------------------------------------


def test_user_guide_example_created_1015_plus_3_days_is_due_the_19th_at_midnight() -> None:
    # The user guide's case: created 2014-01-15 10:30 UTC, 3 days -> 2014-01-19 00:00 UTC.
    assert due_after_days(t("2014-01-15T10:30:00"), 3) == t("2014-01-19T00:00:00")


def test_day_counting_at_midnight_and_zero_days() -> None:
    assert due_after_days(t("2014-01-15T00:00:00"), 3) == t("2014-01-19T00:00:00")
    assert due_after_days(t("2014-01-15T23:59:59"), 0) == t("2014-01-16T00:00:00")
    assert due_after_days(t("2014-12-31T12:00:00"), 1) == t("2015-01-02T00:00:00")


def test_transition_due_exactly_at_that_midnight_not_a_second_before() -> None:
    c = cfg(rule(Transitions=[{"Days": 7, "StorageClass": "GLACIER"}]))
    obj = ObjectMeta("logs/a.gz", BIG, t("2026-03-01T13:00:00"))
    assert due_actions(c, obj, t("2026-03-08T23:59:59")) == ()
    (act,) = due_actions(c, obj, t("2026-03-09T00:00:00"))
    assert (act.kind, act.storage_class, act.rule_id) == ("transition", "GLACIER", "r")


def test_date_rule_applies_at_and_after_the_midnight_whatever_the_age() -> None:
    c = cfg(rule(Expiration={"Date": "2026-06-01T00:00:00Z"}))
    old = ObjectMeta("k", 10, t("2020-01-01T00:00:00"))
    young = ObjectMeta("k2", 10, t("2026-05-31T23:00:00"))
    assert due_actions(c, old, t("2026-05-31T23:59:59")) == ()
    assert due_actions(c, old, t("2026-06-01T00:00:00"))[0].kind == "expire"
    assert due_actions(c, young, t("2026-06-01T00:00:00"))[0].kind == "expire"


# --- filters --------------------------------------------------------------------------------


def test_filters_prefix_tag_size_and() -> None:
    c = cfg(
        rule(
            "and",
            Filter={
                "And": {
                    "Prefix": "logs/",
                    "Tags": [{"Key": "keep", "Value": "no"}],
                    "ObjectSizeGreaterThan": 100,
                    "ObjectSizeLessThan": 1000,
                }
            },
            Expiration={"Days": 1},
        )
    )
    now = t("2026-01-10T00:00:00")
    made = t("2026-01-01T00:00:00")

    def due(key: str, size: int, tags: dict[str, str]) -> bool:
        return bool(due_actions(c, ObjectMeta(key, size, made, tags=tags), now))

    assert due("logs/x", 500, {"keep": "no"})
    assert not due("other/x", 500, {"keep": "no"})
    assert not due("logs/x", 500, {"keep": "yes"})
    assert not due("logs/x", 500, {})
    assert not due("logs/x", 100, {"keep": "no"})  # strictly greater than
    assert not due("logs/x", 1000, {"keep": "no"})  # strictly less than


def test_legacy_prefix_and_disabled_rules() -> None:
    c = cfg(
        {"ID": "legacy", "Status": "Enabled", "Prefix": "tmp/", "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Prefix": "", "Expiration": {"Days": 1}},
    )
    now = t("2026-01-10T00:00:00")
    assert due_actions(c, ObjectMeta("tmp/a", 1, t("2026-01-01T00:00:00")), now)[0].rule_id == "legacy"
    assert due_actions(c, ObjectMeta("logs/a", 1, t("2026-01-01T00:00:00")), now) == ()


# --- overlap --------------------------------------------------------------------------------


def test_expiration_wins_over_transition_on_overlap() -> None:
    c = cfg(
        rule("glacier", Transitions=[{"Days": 1, "StorageClass": "GLACIER"}]),
        rule("expire", Filter={"Prefix": "logs/"}, Expiration={"Days": 1}),
    )
    (act,) = due_actions(c, ObjectMeta("logs/a", BIG, t("2026-01-01T00:00:00")), t("2026-01-05T00:00:00"))
    assert (act.kind, act.rule_id) == ("expire", "expire")


def test_cheapest_transition_wins_among_overlapping_rules() -> None:
    c = cfg(
        rule("ia", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
        rule("deep", Transitions=[{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}]),
        rule("glacier", Transitions=[{"Days": 30, "StorageClass": "GLACIER"}]),
    )
    (act,) = due_actions(c, ObjectMeta("a", BIG, t("2026-01-01T00:00:00")), t("2026-03-01T00:00:00"))
    assert (act.storage_class, act.rule_id) == ("DEEP_ARCHIVE", "deep")


def test_archived_object_never_transitions_back_up_but_still_expires() -> None:
    c = cfg(rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}], Expiration={"Days": 400}))
    glacier = ObjectMeta("a", BIG, t("2025-01-01T00:00:00"), storage_class="GLACIER")
    assert due_actions(c, glacier, t("2025-06-01T00:00:00")) == ()
    assert due_actions(c, glacier, t("2026-03-01T00:00:00"))[0].kind == "expire"


def test_one_rule_with_two_transitions_picks_the_latest_due() -> None:
    c = cfg(
        rule(
            Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}]
        )
    )
    obj = ObjectMeta("a", BIG, t("2026-01-01T12:00:00"))
    assert due_actions(c, obj, t("2026-02-01T00:00:00"))[0].storage_class == "STANDARD_IA"
    assert due_actions(c, obj, t("2026-04-02T00:00:00"))[0].storage_class == "GLACIER"


def test_small_objects_not_transitioned_by_default() -> None:
    spec = rule(Transitions=[{"Days": 1, "StorageClass": "GLACIER"}])
    small = ObjectMeta("a", 1000, t("2026-01-01T00:00:00"))
    now = t("2026-01-09T00:00:00")
    assert due_actions(cfg(spec), small, now) == ()
    assert (
        due_actions(cfg(spec, minimum_object_size=MIN_SIZE_VARIES), small, now)[0].storage_class == "GLACIER"
    )
    sized = rule(Filter={"ObjectSizeGreaterThan": 10}, Transitions=[{"Days": 1, "StorageClass": "GLACIER"}])
    assert due_actions(cfg(sized), small, now)[0].storage_class == "GLACIER"


def test_abort_incomplete_multipart() -> None:
    c = cfg(rule(Filter={"Prefix": "up/"}, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7}))
    started = t("2026-01-01T08:00:00")
    assert abort_due(c, "up/x", started, t("2026-01-08T23:00:00")) is None
    assert abort_due(c, "up/x", started, t("2026-01-09T00:00:00")) is not None
    assert abort_due(c, "other/x", started, t("2026-02-01T00:00:00")) is None


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "code", "words"),
    [
        ([rule(Transitions=[{"Days": 0, "StorageClass": "STANDARD_IA"}])], "InvalidArgument", "Days"),
        ([rule(Transitions=[{"Days": 29, "StorageClass": "ONEZONE_IA"}])], "InvalidArgument", "ONEZONE_IA"),
        ([rule(Expiration={"Days": 0})], "InvalidArgument", "Expiration.Days"),
        ([rule(Expiration={"Days": 1, "Date": "2027-01-01T00:00:00Z"})], "MalformedXML", "Expiration"),
        ([rule(Expiration={"Date": "2027-01-01T05:00:00Z"})], "InvalidArgument", "midnight"),
        ([rule("a", Expiration={"Days": 1}), rule("a", Expiration={"Days": 2})], "InvalidArgument", "unique"),
        (
            [rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"}], Expiration={"Days": 10})],
            "InvalidArgument",
            "Expiration",
        ),
        ([rule()], "InvalidRequest", "action"),
        ([{"ID": "x", "Status": "Enabled", "Expiration": {"Days": 1}}], "MalformedXML", "Filter"),
        ([rule(Prefix="x", Expiration={"Days": 1})], "MalformedXML", "Filter"),
        ([rule(Status="On", Expiration={"Days": 1})], "MalformedXML", "Status"),
        ([rule(NoncurrentVersionExpiration={"NoncurrentDays": 1})], "InvalidRequest", "versions"),
        (
            [
                rule(
                    Filter={"Tag": {"Key": "k", "Value": "v"}},
                    AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1},
                )
            ],
            "InvalidRequest",
            "AbortIncompleteMultipartUpload",
        ),
        ([rule("a" * 256, Expiration={"Days": 1})], "InvalidArgument", "ID"),
        (
            [
                rule(
                    Transitions=[
                        {"Days": 30, "StorageClass": "GLACIER"},
                        {"Days": 60, "StorageClass": "GLACIER"},
                    ]
                )
            ],
            "InvalidArgument",
            "more than once",
        ),
        (
            [
                rule(
                    Transitions=[
                        {"Days": 30, "StorageClass": "STANDARD_IA"},
                        {"Days": 40, "StorageClass": "GLACIER"},
                    ]
                )
            ],
            "InvalidArgument",
            "30 day",
        ),
        (
            [
                rule(
                    Filter={"And": {"ObjectSizeGreaterThan": 100, "ObjectSizeLessThan": 50}},
                    Expiration={"Days": 1},
                )
            ],
            "InvalidRequest",
            "ObjectSizeGreaterThan",
        ),
        ([rule(Filter={"Prefix": "a", "Tag": {"Key": "k"}}, Expiration={"Days": 1})], "MalformedXML", "And"),
        ([rule(Transitions=[{"Days": 3, "StorageClass": "COLD"}])], "MalformedXML", "StorageClass"),
        (
            [
                rule(
                    Transitions=[{"Date": "2027-01-01T00:00:00Z", "StorageClass": "GLACIER"}],
                    Expiration={"Days": 9},
                )
            ],
            "InvalidRequest",
            "mixes",
        ),
    ],
)
def test_refusals_carry_s3_code_and_name_rule_and_field(
    rules: list[dict[str, Any]], code: str, words: str
) -> None:
    with pytest.raises(LifecycleError) as info:
        parse_configuration({"Rules": rules})
    assert info.value.code == code
    assert words in str(info.value)
    assert "Rule[" in str(info.value)


def test_empty_configuration_refused() -> None:
    with pytest.raises(LifecycleError, match="MalformedXML"):
        parse_configuration({"Rules": []})


def test_rule_without_id_gets_one() -> None:
    c = parse_configuration({"Rules": [{"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 3}}]})
    assert c.rules[0].id == "rule-1"


def test_json_and_xml_round_trip() -> None:
    src = {
        "Rules": [
            {
                "ID": "logs",
                "Filter": {"Prefix": "logs/"},
                "Status": "Enabled",
                "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}],
                "Expiration": {"Days": 365},
            },
            {
                "ID": "tagged",
                "Filter": {
                    "And": {"Prefix": "a/", "Tags": [{"Key": "t", "Value": "1"}, {"Key": "u", "Value": "2"}]}
                },
                "Status": "Disabled",
                "Expiration": {"Date": "2027-01-01T00:00:00.000Z"},
            },
            {
                "ID": "old",
                "Prefix": "tmp/",
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
            },
        ]
    }
    c = parse_configuration(src)
    assert to_json(c) == src
    assert parse_xml(to_xml(c)) == c


def test_xml_as_s3_receives_it() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Rule><ID>g</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>
    <Transition><Days>7</Days><StorageClass>GLACIER</StorageClass></Transition>
    <Expiration><Days>365</Days></Expiration></Rule>
  <Rule><ID>all</ID><Filter/><Status>Enabled</Status><Expiration><Days>900</Days></Expiration></Rule>
</LifecycleConfiguration>"""
    c = parse_xml(body)
    assert [r.id for r in c.rules] == ["g", "all"]
    assert c.rules[0].transitions[0].days == 7
    assert c.rules[1].filter.prefix == ""


@pytest.mark.parametrize(
    "body",
    [
        b"<LifecycleConfiguration><Rule>",
        b"<Other/>",
        b'<!DOCTYPE x [<!ENTITY a "b">]><LifecycleConfiguration/>',
    ],
)
def test_bad_xml_is_malformed(body: bytes) -> None:
    with pytest.raises(LifecycleError, match="MalformedXML"):
        parse_xml(body)


# --- the scan's shortcut ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        [rule(Transitions=[{"Days": 7, "StorageClass": "GLACIER"}], Expiration={"Days": 365})],
        [
            rule(Expiration={"Days": 1}),
            rule("b", Filter={"Prefix": "x"}, Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}]),
        ],
        [
            rule(Transitions=[{"Date": "2026-06-01T00:00:00Z", "StorageClass": "GLACIER"}]),
            rule("b", Expiration={"Days": 3}),
        ],
        [rule(Status="Disabled", Expiration={"Days": 1}), rule("b", Expiration={"Days": 2})],
    ],
)
def test_objects_the_cutoff_skips_have_nothing_due(rules: list[dict[str, Any]]) -> None:
    """young_cutoff never skips an object due_actions would act on, at any hour of the day."""
    c = cfg(*rules, minimum_object_size=MIN_SIZE_VARIES)
    for now in (t("2026-05-31T23:59:59"), t("2026-06-01T00:00:00"), t("2026-06-02T13:30:00")):
        cutoff = young_cutoff(c, now)
        for hours in range(0, 24 * 40, 7):
            created = now - timedelta(hours=hours)
            due = due_actions(c, ObjectMeta("k", BIG, created), now)
            if cutoff is not None and created >= cutoff:
                assert due == (), (now, created, cutoff)


def test_the_cutoff_skips_young_objects_and_gives_way_to_a_reached_date() -> None:
    now = t("2026-06-10T12:00:00")
    c = cfg(rule(Transitions=[{"Days": 7, "StorageClass": "GLACIER"}]))
    assert young_cutoff(c, now) == now - timedelta(days=7)
    reached = cfg(rule(Expiration={"Date": "2026-06-01T00:00:00Z"}))
    assert young_cutoff(reached, now) is None
    ahead = cfg(rule(Expiration={"Date": "2026-07-01T00:00:00Z"}))
    assert young_cutoff(ahead, now) == datetime.min.replace(tzinfo=UTC)
