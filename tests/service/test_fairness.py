"""One owner's flood must not starve another owner: bounded scheduler slices, runners shared
between owners, bounded deactivation, and the per-owner limits ([limits] in tailrace.toml)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from service_harness import Harness, definition, of_status, shell

from tailrace.clock import parse_dp
from tailrace.limits import Limits
from tailrace.runtime.errors import LimitExceeded
from tailrace.state import PipelineState, SqlStateStore, Status, create_engine

OPEN_LIMITS = Limits(instances_per_activation=100_000, instances_per_hour=100_000, running_attempts=100)


def flood_definition(start: str = "2024-02-25T00:00:00") -> dict:
    # A 15-minute schedule from a week before T0: about 800 periods due at once.
    return definition(shell("Flood", maxActiveInstances="5"), start=start, period="15 minutes")


def other_definition() -> dict:
    return definition(shell("Other"), start="2024-03-03T00:00:00", period="1 day")


@pytest.fixture
def make(sqlite_url, clock, tmp_path):
    stores = []

    def build(limits: Limits = OPEN_LIMITS, **config) -> Harness:
        store = SqlStateStore(create_engine(sqlite_url), clock=clock)
        stores.append(store)
        return Harness(store=store, home=tmp_path / "home", clock=clock, limits=limits, **config)

    yield build
    for store in stores:
        store.close()
        store.engine.dispose()


def _count(h: Harness, pid: str) -> int:
    return len(h.statuses(pid))


def test_a_backfill_is_created_in_bounded_slices_per_tick(make):
    h = make(steps_per_tick=4, windows_per_step=25)
    flood = h.pipeline(flood_definition(), name="flood", owner="flood")
    first = h.tick()
    assert first.windows == 100 and first.backlog == 1  # 4 slices of 25 periods, the rest waits
    assert _count(h, flood) == 100
    ticks = 1
    while h.tick().backlog:
        ticks += 1
    assert ticks >= 7
    assert _count(h, flood) > 700


def test_another_owners_new_pipeline_gets_a_slice_and_a_runner_during_a_flood(make):
    h = make(steps_per_tick=4, windows_per_step=25)
    flood = h.pipeline(flood_definition(), name="flood", owner="flood")
    h.tick()
    busy = [h.claim(runner=f"r{n}") for n in range(3)]  # the flood keeps three runners busy
    assert all(t is not None and t.pipeline_id == flood for t in busy)
    other = h.pipeline(other_definition(), name="other", owner="other")
    report = h.tick()
    assert report.backlog == 1  # the flood still has periods to create...
    assert of_status(h.statuses(other), Status.WAITING_FOR_RUNNER)  # ...yet the other pipeline is ready
    task = h.claim(runner="r9")
    assert task is not None and task.pipeline_id == other  # fewest running attempts goes first


def test_runners_alternate_between_owners_when_neither_has_work_running(make):
    h = make(steps_per_tick=4, windows_per_step=25)
    flood = h.pipeline(flood_definition(), name="flood", owner="flood")
    h.tick()
    for _ in range(3):  # the flood has been served before the other owner shows up
        task = h.claim()
        assert task is not None and task.pipeline_id == flood
        h.service.set_task_status(task.task_id, "FINISHED")
    other = h.pipeline(other_definition(), name="other", owner="other")
    h.tick()
    ran = []
    for _ in range(4):
        task = h.claim()
        assert task is not None
        ran.append(task.pipeline_id)
        h.service.set_task_status(task.task_id, "FINISHED")
    assert other in ran[:2], ran
    assert ran.count(flood) >= 2


def test_an_owner_at_its_running_attempts_limit_waits_and_others_are_served(make):
    h = make(limits=Limits(instances_per_activation=100_000, running_attempts=2))
    flood = h.pipeline(flood_definition(), name="flood", owner="flood")
    while h.tick().backlog:
        pass
    first = [h.claim(runner=f"r{n}") for n in range(2)]
    assert all(t is not None and t.pipeline_id == flood for t in first)
    assert h.claim(runner="r3") is None  # five are ready, but the owner has two running
    other = h.pipeline(other_definition(), name="other", owner="other")
    h.tick()
    task = h.claim(runner="r4")
    assert task is not None and task.pipeline_id == other
    h.service.set_task_status(first[0].task_id, "FINISHED")
    again = h.claim(runner="r5")
    assert again is not None and again.pipeline_id == flood


def test_deactivating_a_backlog_is_one_bounded_transaction_and_the_rest_drains_in_slices(make):
    h = make(steps_per_tick=50, cancel_inline=50, cancel_per_step=100)
    flood = h.pipeline(flood_definition(), name="flood", owner="flood")
    while h.tick().backlog:
        pass
    backlog = _count(h, flood)
    assert backlog > 700
    running = [h.claim(runner=f"r{n}") for n in range(2)]
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(h.store.engine, "before_cursor_execute", seen)
    h.service.deactivate(flood)
    sa.event.remove(h.store.engine, "before_cursor_execute", seen)
    count = len(statements)
    # Bounded by the slice (50 cancels) and the running attempts, not by the ~800 waiting.
    assert count < 400, count
    statuses = h.statuses(flood)
    assert len(of_status(statuses, Status.CANCELED)) == 50
    with h.store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(flood).state is PipelineState.DEACTIVATING
        assert all(tx.attempts.find(flood, t.attempt_id).cancel_reason for t in running)
    assert h.claim(runner="r9") is None  # nothing of a deactivating pipeline is handed out
    # The runners hear the cancel and stop; the scheduler cancels the rest in slices.
    for t in running:
        assert h.service.report_task_progress(t.task_id) is True
        h.service.set_task_status(t.task_id, "CANCELED", error_message="canceled")
    ticks = 0
    while True:
        ticks += 1
        h.tick()
        with h.store.transaction(readonly=True) as tx:
            if tx.pipelines.get(flood).state is PipelineState.INACTIVE:
                break
        assert ticks < 50
    statuses = h.statuses(flood)
    assert set(statuses.values()) == {"CANCELED"}, set(statuses.values())
    assert len(statuses) == backlog


def test_instances_per_hour_holds_an_owners_schedules_until_the_hour_has_passed(make):
    h = make(limits=Limits(instances_per_activation=100_000, instances_per_hour=60))
    flood = h.pipeline(flood_definition(), name="flood", owner="flood")
    for _ in range(5):
        h.tick()
    assert _count(h, flood) == 60
    with h.store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(flood).next_window_at == h.clock.now() + h.config.throttle_recheck
    # Another owner is not held back by the flood's limit.
    other = h.pipeline(other_definition(), name="other", owner="other")
    h.tick()
    assert _count(h, other) == 1
    h.advance(timedelta(minutes=61))
    assert _count(h, flood) == 120


def test_an_activation_past_instances_per_activation_is_refused_with_the_previews_numbers(make):
    h = make(limits=Limits(instances_per_activation=50))
    start = h.clock.now() - timedelta(days=1)
    pid = h.pipeline(
        flood_definition(start=start.strftime("%Y-%m-%dT%H:%M:%S")), owner="flood", activate=False
    )
    with pytest.raises(LimitExceeded) as caught:
        h.service.activate(pid)
    message = str(caught.value)
    assert "instances_per_activation" in message and "more than 50 instances" in message
    assert "at least 51 periods and 51 instances" in message
    assert "scheduled from 2024-03-02T12:00:00" in message
    preview = h.service.preview_activation(pid)
    assert preview[0].start == parse_dp("2024-03-02T12:00:00")
    with h.store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(pid).state is PipelineState.PENDING
    assert _count(h, pid) == 0
    # A later start keeps the backfill within the limit.
    h.service.activate(pid, start_timestamp=h.clock.now() - timedelta(hours=2))
    h.tick()
    assert 0 < _count(h, pid) <= 50


def test_active_pipelines_per_owner(make):
    h = make(limits=Limits(active_pipelines=1))
    first = h.pipeline(other_definition(), name="a", owner="alice")
    second = h.pipeline(other_definition(), name="b", owner="alice", activate=False)
    with pytest.raises(LimitExceeded, match=r"1 active pipelines.*active_pipelines = 1"):
        h.service.activate(second)
    h.pipeline(other_definition(), name="c", owner="bob")  # another owner has its own count
    h.service.activate(first)  # re-activating an active pipeline is not a new one
    h.service.deactivate(first)
    h.service.activate(second)


def test_an_external_task_runner_of_an_owner_is_held_to_its_running_attempts(make):
    h = make(limits=Limits(instances_per_activation=100_000, running_attempts=1))
    h.pipeline(flood_definition(), name="flood", owner="flood")
    other = h.pipeline(other_definition(), name="other", owner="other")
    h.tick()
    first = h.service.poll_for_task("wg", hostname="h1", owner="flood")
    assert first is not None and first.pipeline_id != other
    assert h.service.poll_for_task("wg", hostname="h2", owner="flood") is None  # at its limit
    theirs = h.service.poll_for_task("wg", hostname="h3", owner="other")
    assert theirs is not None and theirs.pipeline_id == other
