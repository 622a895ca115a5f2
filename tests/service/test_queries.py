"""QueryObjects and DescribeObjects over a pipeline with history: selectors the store can answer
select exactly what matching the described fields selects, pages are cut as documented, and a
page of objects read in bulk describes each object as reading it alone does."""

from __future__ import annotations

import functools
import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from service_harness import definition, shell

from tailrace.api.aws import describe as aws
from tailrace.api.aws.objects import attempt_runtime, instance_runtime
from tailrace.api.aws.objects import text_field as _s
from tailrace.api.aws.selectors import matches, parse_selectors, to_store
from tailrace.clock import format_dp, parse_dp
from tailrace.runtime.errors import InvalidRequest
from tailrace.state import PipelineNotFound, Status


def _all(harness, pid, sphere):
    """(id, described fields) of every object of the sphere, in id order."""
    with harness.store.transaction(readonly=True) as tx:
        if sphere == "INSTANCE":
            return [
                (i.id, [*instance_runtime(i), _s("name", i.id)]) for i in tx.instances.page(pid, limit=10**6)
            ]
        attempts = tx.attempts.page(pid, limit=10**6)
        parents = tx.instances.find_many(pid, {a.instance_id for a in attempts})
        return [(a.id, [*attempt_runtime(a, parents[a.instance_id]), _s("name", a.id)]) for a in attempts]


def _pages(service, pid, sphere, selectors, limit):
    pages, marker = [], None
    while True:
        page = aws.query_objects(service, pid, sphere, selectors=selectors, limit=limit, marker=marker)
        pages.append(page["ids"])
        marker = page.get("marker")
        if not page["hasMoreResults"]:
            return pages


def _pools(objects):
    """Per field, the selector values worth trying: the field's own values, a second either side
    of each time, shortened dates; and, for any field, text that is none of these."""
    pools: dict[str, set[str]] = {}
    for _, fields in objects:
        for f in fields:
            value = f.get("stringValue", f.get("refValue"))
            pool = pools.setdefault(f["key"], set())
            pool.add(value)
            if len(value) == 19 and value[10:11] == "T":
                t = parse_dp(value)
                pool.update(format_dp(t + timedelta(seconds=d)) for d in (-1, 1))
                pool.update((value[:10], value[:13]))
    junk = ["", "zzz", "CANCELLED", "2024", "9999-12-31T23:59:59"]
    return {k: sorted(v) for k, v in pools.items()}, junk


FIELDS = [
    "@status",
    "@scheduledStartTime",
    "@actualStartTime",
    "@actualEndTime",
    "@componentParent",
    "parent",
    "@instanceParent",
    "@attemptCount",
    "name",
]


ALL_OPS = ["EQ", "REF_EQ", "LE", "GE", "BETWEEN"]
TIME_OPS = ["EQ", "LE", "GE", "BETWEEN"]
OPERATORS = {
    "@status": ["EQ"],
    "@scheduledStartTime": TIME_OPS,
    "@actualStartTime": TIME_OPS,
    "@actualEndTime": TIME_OPS,
    "@componentParent": ["REF_EQ"],
    "parent": ["REF_EQ"],
    "@instanceParent": ["REF_EQ"],
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_store_conditions_select_what_field_matching_selects(history, data):
    harness, pid = history
    sphere = data.draw(st.sampled_from(["INSTANCE", "ATTEMPT"]))
    objects = _all(harness, pid, sphere)
    pools, junk = _pools(objects)

    @st.composite
    def selector(draw):
        # Mostly what a client would send (the field's own operators and values), sometimes not.
        field = draw(st.sampled_from(FIELDS))
        sensible = draw(st.integers(0, 4)) > 0
        kind = draw(st.sampled_from(OPERATORS.get(field, ALL_OPS) if sensible else ALL_OPS))
        values = st.sampled_from(pools.get(field, junk) if sensible else junk)
        vals = draw(st.lists(values, min_size=1, max_size=3))
        return {"fieldName": field, "operator": {"type": kind, "values": vals}}

    selectors = data.draw(st.lists(selector(), max_size=2))
    limit = data.draw(st.sampled_from([1, 3, 500]))
    checked = parse_selectors(selectors)
    expected = [oid for oid, fields in objects if matches(fields, checked)]
    where, rest = to_store(sphere, checked)
    event(f"{sphere}: {'store' if where else ''}{'+' if where and rest else ''}{'fields' if rest else ''}")
    event(f"matches {'none' if not expected else 'all' if len(expected) == len(objects) else 'some'}")
    pages = _pages(harness.service, pid, sphere, selectors, limit)
    assert [oid for page in pages for oid in page] == expected
    if not rest:
        # Answered by the store alone: every page but the last is full.
        assert all(len(page) == limit for page in pages[:-1])


@pytest.mark.parametrize("sphere", ["INSTANCE", "ATTEMPT"])
def test_every_single_store_selector_against_field_matching(history, sphere):
    """Each field the store can answer, with each of its operators and every value of the data
    (and a second either side): the same ids as matching the described fields."""
    harness, pid = history
    objects = _all(harness, pid, sphere)
    pools, junk = _pools(objects)
    tried = 0
    for field, kinds in OPERATORS.items():
        pool = pools.get(field, [])
        for kind in kinds:
            if kind == "BETWEEN":
                value_lists = [[a, b] for a, b in itertools.pairwise(pool)] + [[v, v] for v in pool]
            else:
                value_lists = [[v] for v in pool + junk] + [pool[i : i + 3] for i in range(0, len(pool), 3)]
            for vals in value_lists:
                selectors = [{"fieldName": field, "operator": {"type": kind, "values": vals}}]
                checked = parse_selectors(selectors)
                expected = [oid for oid, fields in objects if matches(fields, checked)]
                got = aws.query_objects(harness.service, pid, sphere, selectors=selectors, limit=500)["ids"]
                assert got == expected, selectors
                tried += bool(to_store(sphere, checked)[0])
    assert tried > 30  # the test reached the store conditions


def test_times_compare_as_the_fields_show_them(history):
    harness, pid = history
    with harness.store.transaction(readonly=True) as tx:
        started = [i for i in tx.instances.page(pid, limit=1000) if i.started_at is not None]
    first = min(started, key=lambda i: (i.started_at, i.id))
    assert first.started_at.microsecond == 500_000
    shown = format_dp(first.started_at)  # cut to the second
    query = functools.partial(aws.query_objects, harness.service)

    def ids(kind, *vals):
        sel = [{"fieldName": "@actualStartTime", "operator": {"type": kind, "values": list(vals)}}]
        return query(pid, "INSTANCE", selectors=sel, limit=500)["ids"]

    assert first.id in ids("LE", shown)
    assert first.id in ids("EQ", shown)
    assert first.id in ids("BETWEEN", shown, shown)
    assert first.id in ids("GE", shown)
    assert first.id not in ids("LE", format_dp(first.started_at - timedelta(seconds=1)))
    assert first.id not in ids("GE", format_dp(first.started_at + timedelta(seconds=1)))


def test_eq_matches_any_of_its_values_as_list_runs_status_needs(history):
    harness, pid = history
    statuses = harness.statuses(pid)
    sel = [{"fieldName": "@status", "operator": {"type": "EQ", "values": ["FINISHED", "FAILED"]}}]
    got = aws.query_objects(harness.service, pid, "INSTANCE", selectors=sel, limit=500)["ids"]
    assert got == sorted(i for i, s in statuses.items() if s in ("FINISHED", "FAILED"))
    assert {statuses[i] for i in got} == {"FINISHED", "FAILED"}


def test_selectors_the_store_cannot_answer_are_matched_after_the_page_is_cut(history):
    harness, pid = history
    sel = [{"fieldName": "@attemptCount", "operator": {"type": "EQ", "values": ["1"]}}]
    pages = _pages(harness.service, pid, "INSTANCE", sel, 2)
    total = len(harness.statuses(pid))
    assert len(pages) == -(-total // 2)  # one page per two instances, whatever matched
    assert any(len(p) < 2 for p in pages[:-1])  # waiting instances have no attempt yet


def test_bad_selectors_are_refused_even_on_an_empty_pipeline(harness):
    pid = harness.pipeline(definition(shell("A")), activate=False)
    with pytest.raises(InvalidRequest, match=r"selectors\[1\]: operator type"):
        aws.query_objects(
            harness.service,
            pid,
            "INSTANCE",
            selectors=[{"fieldName": "@status", "operator": {"type": "EQ"}}, {"operator": {"type": "LIKE"}}],
        )
    with pytest.raises(InvalidRequest, match="at most 10 selectors"):
        aws.query_objects(harness.service, pid, "INSTANCE", selectors=[{"fieldName": "name"}] * 11)


def test_a_page_read_in_bulk_describes_each_object_as_reading_it_alone(history):
    harness, pid = history
    service = harness.service
    instances = [oid for oid, _ in _all(harness, pid, "INSTANCE")]
    attempts = [oid for oid, _ in _all(harness, pid, "ATTEMPT")]
    waiting = [i for i, s in harness.statuses(pid).items() if s == Status.WAITING_ON_DEPENDENCIES]
    ids = ["B", *instances[:20], "nope", attempts[0], "@nope_Attempt=1", *waiting, "A", attempts[-1]]
    for evaluate in (False, True):
        bulk = aws.describe_objects(service, pid, ids, evaluate_expressions=evaluate)
        assert not bulk["hasMoreResults"]
        alone = [
            o
            for i in ids
            for o in aws.describe_objects(service, pid, [i], evaluate_expressions=evaluate)["pipelineObjects"]
        ]
        assert bulk["pipelineObjects"] == alone
        assert len(alone) == len(ids) - 2  # the two missing ids are left out
    by_id = {o["id"]: o for o in bulk["pipelineObjects"]}
    statuses = harness.statuses(pid)
    checked = 0
    for iid in waiting:
        if iid.startswith("@B_"):  # B depends on its period's A: named while A has not finished
            a = "@A_" + iid[3:]
            named = {"key": "@waitingOn", "refValue": a} in by_id[iid]["fields"]
            assert named == (statuses[a] != "FINISHED"), (iid, statuses[a])
            checked += named
    assert checked >= 2


def test_another_owners_pipeline_reads_as_missing(history):
    harness, pid = history
    with pytest.raises(PipelineNotFound):
        aws.describe_objects(harness.service, pid, ["A"], owner="someone-else")
    with pytest.raises(PipelineNotFound):
        aws.query_objects(harness.service, pid, "INSTANCE", owner="someone-else")
    assert aws.query_objects(harness.service, pid, "COMPONENT", owner="")["ids"]  # the harness's owner
