"""The contract of tailrace.state.abc, run on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from state_records import T0, instance, pipeline

from tailrace.clock import format_dp
from tailrace.errors import ConfigError, NotFoundError
from tailrace.events.model import (
    AttemptStatusChanged,
    Broadcast,
    ComponentStatusChanged,
    InstanceStatusChanged,
    PipelineCreated,
    PipelineDeleted,
    PipelineStateChanged,
    UnknownEvent,
)
from tailrace.state import (
    LISTING_FIELDS,
    AccessKey,
    Attempt,
    Component,
    DuplicateError,
    ObjectNotFound,
    PipelineNotFound,
    PipelineState,
    SqlStateStore,
    Status,
    TaskRunner,
    Where,
    create_engine,
    schema,
)
from tailrace.state.migrations import LATEST

PID = "df-00000000000000000001"


def attempt(iid, n=1, *, task=None, status=Status.RUNNING, lease=None, pid=PID) -> Attempt:
    return Attempt(
        pipeline_id=pid,
        id=f"{iid}_Attempt={n}",
        instance_id=iid,
        number=n,
        status=status,
        task_id=task or f"task-{iid}-{n}",
        started_at=T0,
        lease_expires_at=lease,
    )


# --- migrations -----------------------------------------------------------------------------------


def test_a_new_database_is_migrated_to_the_latest_version_once(store, db_url, clock):
    assert store.schema_version() == LATEST
    again = SqlStateStore(create_engine(db_url), clock=clock)
    with again.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.schema_version)).all()
    assert [r.version for r in rows] == list(range(1, LATEST + 1))
    again.engine.dispose()


def test_a_database_from_a_newer_tailrace_is_refused(store, db_url, clock):
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(schema.schema_version).values(version=LATEST + 1, description="future", applied_at=T0)
        )
    with pytest.raises(ConfigError, match=f"schema version {LATEST + 1}, newer"):
        SqlStateStore(create_engine(db_url), clock=clock)


# --- pipelines ------------------------------------------------------------------------------------


def test_pipelines_round_trip_with_aware_utc_times(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline(tags={"env": "prod"}, next_window_at=T0 + timedelta(hours=1)))
    with store.transaction(readonly=True) as tx:
        got = tx.pipelines.get(PID)
    assert got.tags == {"env": "prod"}
    assert got.created_at == T0 and got.created_at.tzinfo is not None
    assert got.next_window_at.utcoffset() == timedelta(0)
    assert got.state is PipelineState.SCHEDULED


def test_naive_datetimes_are_refused(store):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.transaction() as tx:
        tx.pipelines.add(pipeline(created_at=datetime(2024, 1, 1)))


def test_a_missing_pipeline_raises_not_found(store):
    with store.transaction() as tx:
        assert tx.pipelines.find("df-nope") is None
        with pytest.raises(PipelineNotFound, match="df-nope"):
            tx.pipelines.get("df-nope")
        with pytest.raises(NotFoundError):
            tx.pipelines.update("df-nope", state=PipelineState.INACTIVE)


def test_unique_id_is_unique_per_owner(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline(unique_id="u1"))
        tx.pipelines.add(pipeline("df-2", unique_id="u1", owner="someone-else"))
        with pytest.raises(DuplicateError):
            tx.pipelines.add(pipeline("df-3", unique_id="u1"))
        # the savepoint keeps the transaction usable after the refused insert
        assert tx.pipelines.find_by_unique_id("me", "u1").id == PID
        assert tx.pipelines.find_by_unique_id("me", "u2") is None


def test_a_state_change_emits_its_event_in_the_same_transaction(store, clock):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline(state=PipelineState.PENDING))
    clock.advance(60)
    with store.transaction() as tx:
        updated = tx.pipelines.update(PID, state=PipelineState.SCHEDULED, detail={"by": "test"})
        tx.pipelines.update(PID, windows_created=3)  # no state change, no event
    assert updated.updated_at == T0 + timedelta(seconds=60)
    events = [r.event for r in store.events_after(0)]
    assert events == [
        PipelineStateChanged(
            at=T0 + timedelta(seconds=60),
            owner="me",
            pipeline_id=PID,
            old="PENDING",
            new="SCHEDULED",
            detail={"by": "test"},
        )
    ]


def test_rollback_discards_changes_and_events(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline(state=PipelineState.PENDING))
    heard = []
    store.subscribe(heard.extend)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.pipelines.update(PID, state=PipelineState.SCHEDULED)
        tx.events.append(Broadcast(at=T0, pipeline_id=PID, text="never"))
        raise RuntimeError("boom")
    with store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(PID).state is PipelineState.PENDING
    assert store.events_after(0) == [] and heard == []


def test_listeners_and_after_commit_callbacks_run_after_commit(store):
    heard, called = [], []
    unsubscribe = store.subscribe(heard.extend)
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.events.append(PipelineCreated(at=T0, pipeline_id=PID, name="p"))
        tx.after_commit(lambda: called.append(len(heard)))
    assert [type(r.event) for r in heard] == [PipelineCreated] and heard[0].id > 0
    assert heard[0].event.owner == "me"  # filled from the pipeline
    assert called == [1]
    unsubscribe()
    with store.transaction() as tx:
        tx.events.append(Broadcast(at=T0, text="other"))
    assert len(heard) == 1


def test_event_cursor_increases_and_filters_by_pipeline(store):
    for i in range(5):
        with store.transaction() as tx:
            tx.events.append(Broadcast(at=T0, pipeline_id=PID if i % 2 else "df-other", text=str(i)))
    everything = store.events_after(0)
    assert [r.event.text for r in everything] == ["0", "1", "2", "3", "4"]
    assert [r.id for r in everything] == sorted(r.id for r in everything)
    assert store.last_event_id() == everything[-1].id
    assert [r.event.text for r in store.events_after(everything[1].id)] == ["2", "3", "4"]
    assert [r.event.text for r in store.events_after(0, pipeline_id=PID)] == ["1", "3"]
    assert len(store.events_after(0, limit=2)) == 2


def test_paging_and_deleting_pipelines(store):
    with store.transaction() as tx:
        for i in range(5):
            tx.pipelines.add(pipeline(f"df-{i}", unique_id=f"u{i}"))
        tx.definitions.add("df-1", {"pipelineObjects": []}, at=T0)
        tx.instances.add_many([instance("df-1", "@A_1", depends_on=("@B_1",))])
        tx.attempts.add(attempt("@A_1", pid="df-1"))
        tx.events.append(Broadcast(at=T0, pipeline_id="df-1", text="kept"))
    with store.transaction() as tx:
        assert [p.id for p in tx.pipelines.page(limit=2)] == ["df-0", "df-1"]
        assert [p.id for p in tx.pipelines.page(after="df-1", limit=10)] == ["df-2", "df-3", "df-4"]
        assert tx.pipelines.page(owner="nobody") == []
        tx.pipelines.delete("df-1")
        assert tx.pipelines.find("df-1") is None
        assert tx.instances.find("df-1", "@A_1") is None
        assert tx.attempts.find("df-1", "@A_1_Attempt=1") is None
        assert tx.definitions.find("df-1", 1) is None
        assert tx.instances.dependents("df-1", ["@B_1"]) == []
        with pytest.raises(PipelineNotFound):
            tx.pipelines.delete("df-1")
    assert [r.event.text for r in store.events_after(0, pipeline_id="df-1")] == ["kept"]


def test_due_pipelines_are_scheduled_ones_whose_next_window_is_due_and_deactivating_ones(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline("df-late", unique_id="1", next_window_at=T0 - timedelta(hours=2)))
        tx.pipelines.add(pipeline("df-now", unique_id="2", next_window_at=T0))
        tx.pipelines.add(pipeline("df-future", unique_id="3", next_window_at=T0 + timedelta(seconds=1)))
        tx.pipelines.add(pipeline("df-done", unique_id="4", next_window_at=None))
        tx.pipelines.add(
            pipeline(
                "df-pending", unique_id="5", state=PipelineState.PENDING, next_window_at=T0 - timedelta(1)
            )
        )
        tx.pipelines.add(pipeline("df-draining", unique_id="6", state=PipelineState.DEACTIVATING))
        assert tx.pipelines.due(T0) == ["df-late", "df-now", "df-draining"]


# --- definitions and components -------------------------------------------------------------------


def test_definition_versions_count_up(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        v1 = tx.definitions.add(PID, {"pipelineObjects": [{"id": "A"}]}, at=T0)
        v2 = tx.definitions.add(PID, {"pipelineObjects": [{"id": "B"}]}, at=T0)
        assert (v1.version, v2.version) == (1, 2)
        assert tx.definitions.find(PID, 1).wire["pipelineObjects"] == [{"id": "A"}]
        assert tx.definitions.find(PID, 3) is None


def test_components_are_replaced_and_their_status_changes_are_events(store):
    def comp(cid, **kw):
        return Component(
            pipeline_id=PID, id=cid, name=cid, type="ShellCommandActivity", category="ACTIVITY", **kw
        )

    with store.transaction() as tx:
        tx.components.replace(PID, [comp("A", fields={"command": "true"}), comp("B")])
        tx.components.replace(PID, [comp("B", status=Status.SCHEDULED), comp("C")])
        assert [c.id for c in tx.components.list(PID)] == ["B", "C"]
        paused = tx.components.update(PID, "B", status=Status.PAUSED)
        assert paused.status is Status.PAUSED
        with pytest.raises(ObjectNotFound):
            tx.components.update(PID, "A", status=Status.PAUSED)
    assert [(type(r.event), r.event.new) for r in store.events_after(0)] == [
        (ComponentStatusChanged, "PAUSED")
    ]


# --- instances ------------------------------------------------------------------------------------


def test_adding_instances_is_idempotent(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        assert (
            tx.instances.add_many([instance(PID, "@A_1"), instance(PID, "@B_1", depends_on=("@A_1",))]) == 2
        )
        assert tx.instances.add_many([instance(PID, "@A_1"), instance(PID, "@A_2")]) == 1
        assert sorted(tx.instances.find_many(PID, ["@A_1", "@A_2", "@nope"])) == ["@A_1", "@A_2"]
        assert tx.instances.get(PID, "@B_1").depends_on == ("@A_1",)
        with pytest.raises(ObjectNotFound, match="@nope"):
            tx.instances.get(PID, "@nope")


def test_instance_update_is_compare_and_set(store, clock):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many([instance(PID, "@A_1")])
    clock.advance(5)
    with store.transaction() as tx:
        lost = tx.instances.update(
            PID, "@A_1", expect_status={Status.WAITING_FOR_RUNNER}, status=Status.RUNNING
        )
        assert lost is None
        won = tx.instances.update(
            PID,
            "@A_1",
            expect_status={Status.WAITING_ON_DEPENDENCIES},
            status=Status.WAITING_FOR_RUNNER,
            queue="wg:g",
            detail={"reason": "ready"},
        )
        assert won.status is Status.WAITING_FOR_RUNNER and won.updated_at == clock.now()
        assert tx.instances.get(PID, "@A_1") == won
        with pytest.raises(ObjectNotFound):
            tx.instances.update(PID, "@nope", status=Status.RUNNING)
    (record,) = store.events_after(0)
    assert record.event == InstanceStatusChanged(
        at=clock.now(),
        owner="me",
        pipeline_id=PID,
        object_id="@A_1",
        component="A",
        old="WAITING_ON_DEPENDENCIES",
        new="WAITING_FOR_RUNNER",
        detail={"reason": "ready"},
    )


def test_instances_by_status_dependents_and_counts(store):
    day = timedelta(days=1)
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(PID, "@A_2", start=T0 + day),
                instance(PID, "@A_1", start=T0, status=Status.FINISHED),
                instance(PID, "@P_1", component="P", category="PRECONDITION"),
                instance(PID, "@R_1", component="R", category="RESOURCE"),
                instance(
                    PID,
                    "@B_1",
                    component="B",
                    depends_on=("@A_1",),
                    preconditions=("@P_1",),
                    resource_id="@R_1",
                ),
                instance(PID, "@C_1", component="C", depends_on=("@B_1",)),
            ]
        )
        waiting = tx.instances.in_status(PID, {Status.WAITING_ON_DEPENDENCIES})
        assert [i.id for i in waiting] == ["@B_1", "@C_1", "@P_1", "@R_1", "@A_2"]
        assert [
            i.id for i in tx.instances.in_status(PID, {Status.WAITING_ON_DEPENDENCIES}, component_id="A")
        ] == ["@A_2"]
        assert (
            tx.instances.count_in_status(
                PID, {Status.FINISHED, Status.WAITING_ON_DEPENDENCIES}, component_id="A"
            )
            == 2
        )
        assert [i.id for i in tx.instances.dependents(PID, ["@A_1"])] == ["@B_1"]
        assert [i.id for i in tx.instances.dependents(PID, ["@P_1", "@R_1", "@B_1"])] == ["@B_1", "@C_1"]
        assert tx.instances.count(PID) == {Status.WAITING_ON_DEPENDENCIES: 5, Status.FINISHED: 1}
        assert [i.id for i in tx.instances.page(PID, limit=3)] == ["@A_1", "@A_2", "@B_1"]
        assert [i.id for i in tx.instances.page(PID, after="@B_1")] == ["@C_1", "@P_1", "@R_1"]


def test_pages_filter_on_status_component_and_times(store):
    half = timedelta(milliseconds=500)
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(PID, f"@{c}_{d}", component=c, start=T0 + timedelta(days=d), status=s, started_at=t)
                for c, d, s, t in [
                    ("A", 0, Status.FINISHED, T0 + half),
                    ("A", 1, Status.FAILED, T0 + timedelta(days=1)),
                    ("A", 2, Status.WAITING_ON_DEPENDENCIES, None),
                    ("B", 0, Status.FINISHED, T0 + timedelta(hours=1) + half),
                    ("B", 1, Status.RUNNING, T0 + timedelta(days=1, seconds=1)),
                ]
            ]
        )
        for c, d in [("A", 0), ("A", 1), ("B", 0), ("B", 1)]:
            tx.attempts.add(attempt(f"@{c}_{d}", status=Status.FINISHED if d == 0 else Status.RUNNING))

        def ids(**kw):
            found = tx.instances.page(PID, limit=100, **kw)
            assert tx.instances.page_ids(PID, limit=100, **kw) == [i.id for i in found]
            return [i.id for i in found]

        assert ids(where=[Where(column="status", op="in", value=[Status.FINISHED, "FAILED"])]) == [
            "@A_0",
            "@A_1",
            "@B_0",
        ]
        assert ids(where=[Where(column="component_id", op="in", value={"B"})]) == ["@B_0", "@B_1"]
        day1 = [
            Where(column="scheduled_start", op="ge", value=T0 + timedelta(days=1)),
            Where(column="scheduled_start", op="lt", value=T0 + timedelta(days=2)),
        ]
        assert ids(where=day1) == ["@A_1", "@B_1"]
        assert ids(where=day1, after="@A_1") == ["@B_1"]
        # Sub-second start times compare as stored; NULL never matches.
        assert ids(where=[Where(column="started_at", op="lt", value=T0 + half)]) == []
        assert ids(where=[Where(column="started_at", op="ge", value=T0 + half)]) == [
            "@A_0",
            "@A_1",
            "@B_0",
            "@B_1",
        ]
        assert ids(where=[Where(column="started_at", op="lt", value=T0 + timedelta(days=1))]) == [
            "@A_0",
            "@B_0",
        ]
        assert tx.instances.page_ids(PID, limit=2, where=[Where(column="status", op="in", value=[])]) == []
        with pytest.raises(ValueError, match="filter on"):
            tx.instances.page(PID, where=[Where(column="spec", op="in", value=["x"])])

        running = [Where(column="status", op="in", value=["RUNNING"])]
        assert [a.id for a in tx.attempts.page(PID, where=running)] == ["@A_1_Attempt=1", "@B_1_Attempt=1"]
        assert [
            a.id for a in tx.attempts.page(PID, where=[Where(column="instance_id", op="in", value=["@B_0"])])
        ] == ["@B_0_Attempt=1"]
        found = tx.attempts.find_many(PID, ["@A_0_Attempt=1", "@B_1_Attempt=1", "@nope_Attempt=1"])
        assert sorted(found) == ["@A_0_Attempt=1", "@B_1_Attempt=1"]
        assert found["@B_1_Attempt=1"] == tx.attempts.find(PID, "@B_1_Attempt=1")
        assert tx.attempts.find_many(PID, []) == {}


def test_listing_holds_what_page_reads_in_the_fields_listings_show(store):
    half = timedelta(milliseconds=999)
    spec = {"inputs": ["@In_1"], "outputs": ["@Out_1", "@Out_2"], "node": "@Node_1", "retry_delay": 600.0}
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(
                    PID,
                    "@A_1",
                    status=Status.FAILED,
                    started_at=T0 + half,
                    ended_at=T0 + timedelta(hours=1),
                    attempt_count=2,
                    tries_left=1,
                    head_attempt="@A_1_Attempt=2",
                    error_message="exit 3",
                    worker_group="wg",
                    depends_on=("@P_1",),
                    preconditions=("@Ready_1",),
                    spec=spec,
                ),
                instance(PID, "@B_1", component="B", start=T0 + timedelta(days=1)),
                instance(PID, "@C_1", component="C", status=Status.RUNNING),
            ]
        )
        failed_or_waiting = [Where(column="status", op="in", value=["FAILED", "WAITING_ON_DEPENDENCIES"])]
        for where in ([], failed_or_waiting):
            records = tx.instances.page(PID, limit=100, where=where)
            listed = tx.instances.listing(PID, limit=100, where=where)
            assert [r[LISTING_FIELDS.index("id")] for r in listed] == [i.id for i in records]
            for inst, row in zip(records, listed, strict=True):
                shown = dict(zip(LISTING_FIELDS, row, strict=True))
                for name, value in shown.items():
                    if name in ("inputs", "outputs", "node"):
                        want = inst.spec.get(name) or (None if name == "node" else ())
                        assert (tuple(value) if name != "node" else value) == (
                            tuple(want) if name != "node" else want
                        ), name
                    elif isinstance(getattr(inst, name), datetime):
                        assert value == format_dp(getattr(inst, name)), name  # cut to the second
                    elif name == "status":
                        assert value == inst.status.value
                    else:
                        assert value == getattr(inst, name), name
        [first] = tx.instances.listing(PID, limit=1)
        assert first[LISTING_FIELDS.index("started_at")] == "2024-03-01T00:00:00"  # T0 + 0.999 s, cut
        assert tx.instances.listing(PID, after="@A_1", limit=1)[0][0] == "@B_1"


def test_due_instances_leave_out_those_with_nothing_pending(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(PID, "@A_1", due_at=T0 - timedelta(minutes=1)),
                instance(PID, "@A_2", due_at=T0),
                instance(PID, "@A_3", due_at=T0 + timedelta(minutes=1)),
                instance(PID, "@A_4", due_at=None, status=Status.FINISHED),
            ]
        )
        assert [i.id for i in tx.instances.due(T0)] == ["@A_1", "@A_2"]
        assert [i.id for i in tx.instances.due(T0, limit=1)] == ["@A_1"]


def test_claim_next_takes_the_oldest_ready_instance_of_the_queues(store):
    day = timedelta(days=1)
    ready = Status.WAITING_FOR_RUNNER
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.pipelines.add(pipeline("df-off", unique_id="off", state=PipelineState.INACTIVE))
        tx.instances.add_many(
            [
                instance(PID, "@A_3", start=T0 + 2 * day, status=ready, queue="wg:g1"),
                instance(PID, "@A_2", start=T0 + day, status=ready, queue="wg:g1"),
                instance(
                    PID, "@A_1", start=T0, status=ready, queue="wg:g1", ready_at=T0 + timedelta(minutes=2)
                ),
                instance(PID, "@B_1", start=T0, status=ready, queue="wg:g_2"),
                instance(PID, "@C_1", start=T0 - day, status=Status.WAITING_ON_DEPENDENCIES, queue="wg:g1"),
                instance("df-off", "@A_1", start=T0 - day, status=ready, queue="wg:g1"),
            ]
        )
        assert tx.instances.claim_next(["wg:g1"], T0).id == "@A_2"  # @A_1 is not ready until T0+2m
        assert tx.instances.claim_next(["wg:g1"], T0 + timedelta(minutes=2)).id == "@A_1"
        assert tx.instances.claim_next(["wg:g_*"], T0).id == "@B_1"
        assert tx.instances.claim_next(["wg:g%"], T0) is None  # no LIKE wildcards leak through
        assert tx.instances.claim_next(["wg:other"], T0) is None
        assert tx.instances.claim_next([], T0) is None


def test_concurrent_claimers_never_get_the_same_instance(store):
    ids = [f"@A_{i:03d}" for i in range(60)]
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(
                    PID, iid, start=T0 + timedelta(minutes=i), status=Status.WAITING_FOR_RUNNER, queue="wg:g"
                )
                for i, iid in enumerate(ids)
            ]
        )
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        while True:
            with store.transaction() as tx:
                inst = tx.instances.claim_next(["wg:g"], T0 + timedelta(days=1))
                if inst is None:
                    return
                tx.instances.update(PID, inst.id, status=Status.RUNNING)
            with lock:
                claimed.append(inst.id)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids


def test_an_open_claim_is_skipped_not_waited_for(store):
    """PostgreSQL: a second claimer gets the next instance while the first still holds its row.
    SQLite: the second claimer waits for the writer, then sees the first claim."""
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(
                    PID, f"@A_{i}", start=T0 + timedelta(hours=i), status=Status.WAITING_FOR_RUNNER, queue="q"
                )
                for i in range(2)
            ]
        )
    first_claimed, second_done = threading.Event(), threading.Event()
    got: dict[str, str] = {}

    def second() -> None:
        first_claimed.wait(10)
        with store.transaction() as tx:
            got["second"] = tx.instances.claim_next(["q"], T0 + timedelta(days=1)).id
        second_done.set()

    t = threading.Thread(target=second)
    t.start()
    with store.transaction() as tx:
        got["first"] = tx.instances.claim_next(["q"], T0 + timedelta(days=1)).id
        tx.instances.update(PID, got["first"], status=Status.RUNNING)
        first_claimed.set()
        if store.dialect == "postgresql":
            assert second_done.wait(10), "the second claimer was blocked by the first one's row lock"
    t.join(10)
    assert got == {"first": "@A_0", "second": "@A_1"}


# --- attempts -------------------------------------------------------------------------------------


def test_attempts_by_task_cas_and_expired_leases(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.attempts.add(attempt("@A_1", 1, lease=T0 - timedelta(seconds=1)))
        tx.attempts.add(attempt("@A_1", 2, lease=T0 + timedelta(seconds=30)))
        tx.attempts.add(attempt("@B_1", 1, lease=T0 - timedelta(seconds=5), status=Status.FAILED))
        with pytest.raises(DuplicateError):
            tx.attempts.add(attempt("@C_1", 1, task="task-@A_1-1"))
        assert tx.attempts.by_task("task-@A_1-2").id == "@A_1_Attempt=2"
        assert tx.attempts.by_task("nope") is None
        assert [a.number for a in tx.attempts.for_instance(PID, "@A_1")] == [1, 2]
        assert [a.id for a in tx.attempts.expired(T0)] == ["@A_1_Attempt=1"]
        assert [a.id for a in tx.attempts.running(PID)] == ["@A_1_Attempt=1", "@A_1_Attempt=2"]
        assert (
            tx.attempts.update(PID, "@A_1_Attempt=1", expect_status={Status.FINISHED}, status=Status.FAILED)
            is None
        )
        done = tx.attempts.update(
            PID,
            "@A_1_Attempt=1",
            expect_status={Status.RUNNING},
            status=Status.FAILED,
            error_message="lease expired",
            ended_at=T0,
            progress={"percentComplete": "40"},
        )
        assert done.error_message == "lease expired" and done.progress == {"percentComplete": "40"}
        assert tx.attempts.find(PID, "@A_1_Attempt=1") == done
        assert tx.attempts.expired(T0) == []
        assert [a.id for a in tx.attempts.page(PID, after="@A_1_Attempt=1")] == [
            "@A_1_Attempt=2",
            "@B_1_Attempt=1",
        ]
    (record,) = store.events_after(0)
    event = record.event
    assert (type(event), event.new, event.instance) == (AttemptStatusChanged, "FAILED", "@A_1")


# --- keys, leases, task runners -------------------------------------------------------------------


def test_access_keys(store):
    key = AccessKey(access_key_id="AKIDEXAMPLE", secret_access_key="s3cr3t", owner="me", created_at=T0)
    with store.transaction() as tx:
        tx.keys.add(key)
        tx.keys.add(AccessKey(access_key_id="AKID2", secret_access_key="x", owner="you", created_at=T0))
        with pytest.raises(DuplicateError):
            tx.keys.add(key)
        assert tx.keys.find("AKIDEXAMPLE") == key
        assert [k.access_key_id for k in tx.keys.list("me")] == ["AKIDEXAMPLE"]
        tx.keys.set_active("AKIDEXAMPLE", False)
        assert tx.keys.find("AKIDEXAMPLE").active is False
        with pytest.raises(NotFoundError):
            tx.keys.set_active("nope", True)


def test_leases_are_exclusive_until_they_expire(store):
    later = T0 + timedelta(seconds=30)
    with store.transaction() as tx:
        assert tx.leases.acquire("scheduler", "a", now=T0, until=later)
        assert not tx.leases.acquire("scheduler", "b", now=T0, until=later)
        assert tx.leases.acquire("scheduler", "a", now=T0, until=later + timedelta(seconds=30))  # renew
        assert tx.leases.holder("scheduler", now=T0) == "a"
        assert not tx.leases.acquire("scheduler", "b", now=later, until=later + timedelta(seconds=60))
        assert tx.leases.acquire(
            "scheduler", "b", now=later + timedelta(seconds=30), until=later + timedelta(90)
        )
        tx.leases.release("scheduler", "a")  # not the holder: no effect
        assert tx.leases.holder("scheduler", now=later + timedelta(seconds=31)) == "b"
        tx.leases.release("scheduler", "b")
        assert tx.leases.holder("scheduler", now=T0) is None


def test_task_runner_heartbeats_upsert(store, clock):
    with store.transaction() as tx:
        tx.runners.beat(TaskRunner(runner_id="r1", worker_group="g", hostname="h1", heartbeat_at=T0))
        again = tx.runners.beat(
            TaskRunner(
                runner_id="r1", worker_group="g", hostname="h2", heartbeat_at=T0 + timedelta(minutes=15)
            )
        )
        assert again.hostname == "h2" and again.terminate is False
        assert [r.runner_id for r in tx.runners.list()] == ["r1"]


# --- indexes: the scheduler's queries do not scan finished history --------------------------------


def _plan(store, query) -> str:
    with store.engine.connect() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        if store.dialect == "sqlite":
            return " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
        conn.exec_driver_sql("SET enable_seqscan = off")
        return " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))


def test_due_work_queries_use_the_partial_indexes(store):
    now = datetime(2024, 1, 1, tzinfo=UTC)
    inst, att = schema.instances, schema.attempts
    due = sa.select(inst).where(inst.c.due_at <= now).order_by(inst.c.due_at).limit(10)
    assert "ix_tr_instances_due" in _plan(store, due)
    claim = sa.select(inst).where(
        inst.c.status == sa.literal_column("'WAITING_FOR_RUNNER'"), inst.c.queue.in_(["wg:g"])
    )
    assert "ix_tr_instances_claim" in _plan(store, claim)
    expired = sa.select(att).where(
        att.c.status == sa.literal_column("'RUNNING'"), att.c.lease_expires_at < now
    )
    assert "ix_tr_attempts_lease" in _plan(store, expired)


def test_latest_ended_and_deleted_pipelines(store, clock):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(PID, "@A_1", status=Status.FINISHED, ended_at=T0 + timedelta(hours=2)),
                instance(PID, "@A_2", status=Status.FAILED, ended_at=T0 + timedelta(hours=1)),
                instance(
                    PID,
                    "@D_1",
                    category="DATA_NODE",
                    status=Status.FINISHED,
                    ended_at=T0 + timedelta(hours=3),
                ),
                instance(PID, "@A_3", status=Status.RUNNING),
            ]
        )
        assert tx.instances.latest_ended(PID)[0] == "@D_1"
        assert tx.instances.latest_ended(PID, category="ACTIVITY") == (
            "@A_1",
            Status.FINISHED,
            T0 + timedelta(hours=2),
        )
        assert tx.instances.latest_ended("df-other") is None
        # The one-read form DescribePipelines uses agrees with the two reads.
        found, last = tx.pipelines.find_with_latest_ended(PID, category="ACTIVITY")
        assert found == tx.pipelines.find(PID)
        assert last == ("@A_1", Status.FINISHED, T0 + timedelta(hours=2))
        assert tx.pipelines.find_with_latest_ended(PID, category="DATA_NODE")[1][0] == "@D_1"
        assert tx.pipelines.find_with_latest_ended(PID, category="RESOURCE") == (found, None)
        assert tx.pipelines.find_with_latest_ended("df-other", category="ACTIVITY") is None
        assert not tx.pipelines.was_deleted(PID)
        tx.pipelines.delete(PID)
        tx.events.append(PipelineDeleted(at=T0, owner="me", pipeline_id=PID))
    with store.transaction(readonly=True) as tx:
        assert tx.pipelines.was_deleted(PID)


def test_counting_first_runs_only_leaves_out_reruns(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.instances.add_many(
            [
                instance(PID, "@A_1", status=Status.RUNNING),
                instance(PID, "@A_2", status=Status.WAITING_FOR_RUNNER, reruns=1),
                instance(PID, "@B_1", component="B", status=Status.RUNNING),
            ]
        )
        active = {Status.RUNNING, Status.WAITING_FOR_RUNNER}
        assert tx.instances.count_in_status(PID, active, component_id="A") == 2
        assert tx.instances.count_in_status(PID, active, component_id="A", first_runs_only=True) == 1
        assert tx.instances.count_in_status(PID, active) == 3
        assert [i.id for i in tx.instances.in_status(PID, active, limit=2)] == ["@A_1", "@A_2"]


def test_next_wakeup_is_the_earliest_pending_time(store):
    with store.transaction(readonly=True) as tx:
        assert tx.next_wakeup() is None
    with store.transaction() as tx:
        tx.pipelines.add(pipeline(next_window_at=T0 + timedelta(hours=3)))
        tx.pipelines.add(pipeline("df-off", unique_id="off", state=PipelineState.INACTIVE, next_window_at=T0))
        tx.instances.add_many([instance(PID, "@A_1", due_at=T0 + timedelta(hours=2))])
        tx.attempts.add(attempt("@A_1", lease=T0 + timedelta(hours=1)))
        tx.attempts.add(attempt("@A_2", lease=T0 - timedelta(hours=1), status=Status.FAILED))
    with store.transaction(readonly=True) as tx:
        assert tx.next_wakeup() == T0 + timedelta(hours=1)


# --- event outbox and consumer cursors ------------------------------------------------------------


def test_events_are_stored_typed_with_their_version_and_owner(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline())
        tx.events.append(PipelineCreated(at=T0, pipeline_id=PID, name="p"))  # owner filled: "me"
        tx.events.append(PipelineCreated(at=T0, owner="explicit", pipeline_id="df-gone", name="q"))
        tx.events.append(Broadcast(at=T0, text="to all"))  # no pipeline: no owner
        with pytest.raises(TypeError, match="takes a tailrace"):
            tx.events.append("pipeline.created")
    records = store.events_after(0)
    assert [(type(r.event), r.event.owner) for r in records] == [
        (PipelineCreated, "me"),
        (PipelineCreated, "explicit"),
        (Broadcast, None),
    ]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.events.c.type, schema.events.c.version, schema.events.c.owner)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("pipeline.created", 1, "me"),
        ("pipeline.created", 1, "explicit"),
        ("operator.broadcast", 1, None),
    ]


def test_each_event_carries_its_own_pipelines_owner(store):
    with store.transaction() as tx:
        tx.pipelines.add(pipeline("df-a", unique_id="a", owner="alice"))
        tx.pipelines.add(pipeline("df-b", unique_id="b", owner="bob"))
        tx.instances.add_many([instance("df-a", "@A_1"), instance("df-b", "@A_1")])
    for _ in range(2):  # the second time from the store's cache of owners
        with store.transaction() as tx:  # one transaction touching both owners' pipelines
            for pid in ("df-b", "df-a"):
                current = tx.instances.get(pid, "@A_1").status
                new = Status.RUNNING if current is not Status.RUNNING else Status.FINISHED
                tx.instances.update(pid, "@A_1", status=new)
                tx.events.append(
                    Broadcast(at=T0, pipeline_id=pid, owner="ops", text="owner set by its producer")
                )
    seen = [(r.event.pipeline_id, type(r.event).__name__, r.event.owner) for r in store.events_after(0)]
    assert seen == 2 * [
        ("df-b", "InstanceStatusChanged", "bob"),
        ("df-b", "Broadcast", "ops"),  # an owner the producer set is kept as it is
        ("df-a", "InstanceStatusChanged", "alice"),
        ("df-a", "Broadcast", "ops"),
    ]


def test_an_event_written_by_a_newer_version_reads_back_as_unknown(store):
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(schema.events).values(
                type="future.thing", version=3, at=T0, owner="me", pipeline_id=PID, payload={"x": 1}
            )
        )
    (record,) = store.events_after(0)
    assert isinstance(record.event, UnknownEvent)
    assert (record.event.type_name, record.event.version, dict(record.event.payload)) == (
        "future.thing",
        3,
        {"x": 1},
    )


def test_cursors_only_move_forward(store, clock):
    with store.transaction() as tx:
        assert tx.cursors.find("console") is None
        assert tx.cursors.save("console", event_id=5, position="5-0", at=T0) is True
        assert tx.cursors.save("console", event_id=3, position="3-0", at=T0) is False
        assert tx.cursors.save("console", event_id=5, position="5-0", at=T0) is False
        assert tx.cursors.save("notifier", event_id=1, position="1-0", at=T0) is True
    with store.transaction() as tx:
        assert tx.cursors.save("console", event_id=9, position="9-0", at=T0 + timedelta(seconds=1)) is True
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.cursors.save("console", event_id=12, position="12-0", at=T0)
        raise RuntimeError("rolled back")
    with store.transaction(readonly=True) as tx:
        console = tx.cursors.find("console")
        assert (console.event_id, console.position, console.updated_at) == (
            9,
            "9-0",
            T0 + timedelta(seconds=1),
        )
        assert tx.cursors.find("notifier").event_id == 1


def test_migration_2_adds_owner_and_version_to_existing_events(db_url, clock):
    engine = create_engine(db_url)
    SqlStateStore(engine, clock=clock)
    with engine.begin() as conn:  # back to a version-1 database holding one event
        conn.execute(sa.text("DROP TABLE tr_cursors"))
        conn.execute(sa.text("ALTER TABLE tr_events DROP COLUMN owner"))
        conn.execute(sa.text("ALTER TABLE tr_events DROP COLUMN version"))
        conn.execute(sa.delete(schema.schema_version).where(schema.schema_version.c.version > 1))
        conn.execute(sa.insert(schema.pipelines).values(**_pipeline_row()))
        conn.execute(
            sa.text(
                "INSERT INTO tr_events (type, at, pipeline_id, object_id, payload) "
                "VALUES ('pipeline.created', :at, :pid, :pid, '{\"name\": \"p\"}')"
            ),
            {"at": T0.replace(tzinfo=None), "pid": PID},
        )
    store = SqlStateStore(engine, clock=clock)
    assert store.schema_version() == LATEST
    (record,) = store.events_after(0)
    assert record.event == PipelineCreated(at=T0, owner="me", pipeline_id=PID, name="p")
    with store.transaction() as tx:
        assert tx.cursors.save("c", event_id=record.id, position="", at=T0)
    engine.dispose()


def _pipeline_row() -> dict:
    from tailrace.state.repos import _row_of

    return _row_of(pipeline())
