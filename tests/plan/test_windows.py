from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tailrace.definition import loads, resolve
from tailrace.plan import PlanError, Planner, topological_order
from tailrace.sample.demo import seed_definition_text

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _def(objects: list[dict]) -> object:
    return resolve(loads(json.dumps({"objects": objects})))


def _schedule(**fields: str) -> dict:
    return {"id": "S", "type": "Schedule", **fields}


def _activity(**fields: object) -> dict:
    return {"id": "A", "type": "ShellCommandActivity", "command": "true", "workerGroup": "wg", **fields}


def test_seed_pipeline_until_plans_two_periods_with_dependencies():
    resolved = resolve(loads(seed_definition_text()))
    planner = Planner(resolved, activated_at=NOW)
    instances = planner.plan_until(datetime(2012, 12, 26, tzinfo=UTC))
    ids = {i.id for i in instances}
    for day in ("2012-12-24", "2012-12-25"):
        for comp in ("archive", "stats", "log", "log-archive", "log-stats", "emr-log"):
            assert f"@{comp}_{day}T00:00:00" in ids
    assert not any("2012-12-26" in i for i in ids)
    archive = next(i for i in instances if i.id == "@archive_2012-12-24T00:00:00")
    assert archive.inputs == ("@log_2012-12-24T00:00:00",)
    assert archive.outputs == ("@log-archive_2012-12-24T00:00:00",)
    assert archive.depends_on == ("@log_2012-12-24T00:00:00",)
    assert archive.runs_on == "@emr-log_2012-12-24T00:00:00"
    out_node = next(i for i in instances if i.id == "@log-archive_2012-12-25T00:00:00")
    assert out_node.depends_on == ("@archive_2012-12-25T00:00:00",)
    order = [i.id for i in topological_order(instances)]
    assert order.index("@log_2012-12-24T00:00:00") < order.index("@archive_2012-12-24T00:00:00")
    assert order.index("@archive_2012-12-24T00:00:00") < order.index("@log-archive_2012-12-24T00:00:00")
    assert order.index("@emr-log_2012-12-24T00:00:00") < order.index("@stats_2012-12-24T00:00:00")


def test_cron_runs_at_start_timeseries_at_end():
    objs = [
        _schedule(startDateTime="2012-09-01T22:00:00", period="30 minutes"),
        _activity(schedule={"ref": "S"}),
    ]
    cron = Planner(_def([{"id": "Default", "scheduleType": "cron"}, *objs]), activated_at=NOW)
    ts = Planner(_def([{"id": "Default", "scheduleType": "timeseries"}, *objs]), activated_at=NOW)
    until = datetime(2012, 9, 1, 23, 0, tzinfo=UTC)
    c = cron.plan_until(until)
    t = ts.plan_until(until)
    assert [i.run_at.strftime("%H:%M") for i in c] == ["22:00", "22:30"]
    assert [i.run_at.strftime("%H:%M") for i in t] == ["22:30", "23:00"]
    assert [i.scheduled_start for i in c] == [i.scheduled_start for i in t]


def test_end_date_time_and_occurrences_bound_the_backfill():
    until = datetime(2013, 1, 1, tzinfo=UTC)
    end = _def(
        [
            _schedule(startDateTime="2012-12-01T00:00:00", period="1 day", endDateTime="2012-12-04T00:00:00"),
            _activity(schedule={"ref": "S"}),
        ]
    )
    occ = _def(
        [
            _schedule(startDateTime="2012-12-01T00:00:00", period="1 day", occurrences="2"),
            _activity(schedule={"ref": "S"}),
        ]
    )
    assert len(Planner(end, activated_at=NOW).plan_until(until)) == 3
    assert len(Planner(occ, activated_at=NOW).plan_until(until)) == 2


def test_calendar_months_are_added_from_the_start():
    resolved = _def(
        [_schedule(startDateTime="2012-01-31T00:00:00", period="1 month"), _activity(schedule={"ref": "S"})]
    )
    starts = [
        i.scheduled_start.date().isoformat()
        for i in Planner(resolved, activated_at=NOW).plan_until(datetime(2012, 5, 1, tzinfo=UTC))
    ]
    assert starts == ["2012-01-31", "2012-02-29", "2012-03-31", "2012-04-30"]


def test_first_activation_and_ondemand():
    first = _def(
        [_schedule(startAt="FIRST_ACTIVATION_DATE_TIME", period="1 day"), _activity(schedule={"ref": "S"})]
    )
    act = datetime(2020, 5, 5, 12, tzinfo=UTC)
    inst = Planner(first, activated_at=act).plan_until(act.replace(hour=13))
    assert [i.scheduled_start for i in inst] == [act]
    ondemand = _def([{"id": "Default", "scheduleType": "ondemand"}, _activity()])
    inst = Planner(ondemand, activated_at=act).plan_until(act)
    assert [(i.id, i.schedule_type) for i in inst] == [("@A_2020-05-05T12:00:00", "ondemand")]


def test_hourly_activity_rolls_up_to_the_daily_input():
    resolved = _def(
        [
            _schedule(startDateTime="2012-12-24T00:00:00", period="1 hour"),
            {"id": "D", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
            {"id": "N", "type": "S3DataNode", "directoryPath": "s3://b/x/", "schedule": {"ref": "D"}},
            _activity(schedule={"ref": "S"}, input={"ref": "N"}),
        ]
    )
    inst = Planner(resolved, activated_at=NOW).plan_until(datetime(2012, 12, 24, 3, tzinfo=UTC))
    acts = [i for i in inst if i.component_id == "A"]
    assert len(acts) == 3
    assert {i.inputs for i in acts} == {("@N_2012-12-24T00:00:00",)}


def test_missing_schedule_is_a_plan_error_naming_the_object():
    resolved = _def([_activity()])
    with pytest.raises(PlanError) as err:
        Planner(resolved, activated_at=NOW).plan_until(NOW)
    assert "'A'" in str(err.value) and "schedule" in str(err.value)


def test_depends_on_cycle_is_reported():
    resolved = _def(
        [
            _schedule(startDateTime="2012-12-24T00:00:00", period="1 day"),
            _activity(id="A", schedule={"ref": "S"}, dependsOn={"ref": "B"}),
            _activity(id="B", schedule={"ref": "S"}, dependsOn={"ref": "A"}),
        ]
    )
    inst = Planner(resolved, activated_at=NOW).plan_until(datetime(2012, 12, 25, tzinfo=UTC))
    with pytest.raises(PlanError, match="cycle"):
        topological_order(inst)


def test_a_long_backfill_plans_every_window_once_and_rolls_up_by_lookup():
    resolved = _def(
        [
            _schedule(startDateTime="2012-01-01T00:00:00", period="1 day"),
            {"id": "H", "type": "Schedule", "startDateTime": "2012-01-01T00:00:00", "period": "6 hours"},
            {"id": "N", "type": "S3DataNode", "directoryPath": "s3://b/x/", "schedule": {"ref": "S"}},
            _activity(schedule={"ref": "H"}, input={"ref": "N"}),
        ]
    )
    planner = Planner(resolved, activated_at=NOW)
    inst = planner.plan_until(datetime(2013, 1, 1, tzinfo=UTC))
    acts = [i for i in inst if i.component_id == "A"]
    assert len(acts) == 366 * 4  # 2012 is a leap year
    assert len({i.id for i in acts}) == len(acts)
    for act in acts[::97]:
        assert act.inputs == (f"@N_{act.scheduled_start.strftime('%Y-%m-%d')}T00:00:00",)
    assert planner.window_at(resolved.get("N"), datetime(2011, 12, 31, tzinfo=UTC)) is None


def test_planning_since_a_start_is_planning_all_and_keeping_the_later_ones():
    objs = [
        {"id": "Default", "scheduleType": "timeseries"},
        _schedule(startDateTime="2012-01-01T00:00:00", period="1 day"),
        {"id": "N", "type": "S3DataNode", "directoryPath": "s3://b/x/", "schedule": {"ref": "S"}},
        _activity(schedule={"ref": "S"}, input={"ref": "N"}),
    ]
    until = datetime(2012, 3, 1, tzinfo=UTC)
    everything = Planner(_def(objs), activated_at=NOW).plan_until(until)
    for since in (
        datetime(2011, 1, 1, tzinfo=UTC),
        datetime(2012, 1, 1, tzinfo=UTC),
        datetime(2012, 2, 10, 12, tzinfo=UTC),  # inside a period: from the next one
        datetime(2012, 2, 29, tzinfo=UTC),
        until,
    ):
        got = Planner(_def(objs), activated_at=NOW).plan_until(until, since=since)
        assert got == [i for i in everything if i.scheduled_start >= since], since
