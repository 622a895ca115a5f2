"""Instances of components per schedule window, and the dependencies between them.

Pure: (resolved definition, activation time, until) -> PlannedInstance records with
deterministic ids (`@<component>_<YYYY-MM-DDTHH:MM:SS>`), so re-planning is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tailrace.definition import Category, ResolvedDefinition, ResolvedObject, parse_period
from tailrace.errors import LocatedError, Location
from tailrace.ids import instance_id
from tailrace.plan.windows import (
    MAX_WINDOWS,
    PlanError,
    Window,
    WindowSeries,
    iter_windows,
    schedule_type_of,
    windows_until,
)

PLANNED_CATEGORIES = (Category.ACTIVITY, Category.DATA_NODE, Category.PRECONDITION, Category.RESOURCE)
DEFAULT_MAXIMUM_RETRIES = 3  # "an activity retries three times before entering a hard failure state"
DEFAULT_RETRY_DELAY = timedelta(minutes=10)


@dataclass(frozen=True, kw_only=True, slots=True)
class PlannedInstance:
    id: str
    component_id: str
    type: str
    category: Category
    schedule_type: str
    scheduled_start: datetime
    scheduled_end: datetime
    run_at: datetime
    depends_on: tuple[str, ...] = ()
    """Instance ids that must be FINISHED (data nodes: READY) before this one may run."""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    preconditions: tuple[str, ...] = ()
    runs_on: str | None = None
    """The resource instance this activity runs on, if `runsOn` is set."""
    worker_group: str | None = None
    node: str | None = None
    """For precondition instances: the instance they guard (`#{node...}`)."""
    maximum_retries: int = DEFAULT_MAXIMUM_RETRIES
    retry_delay: timedelta = DEFAULT_RETRY_DELAY
    attempt_timeout: timedelta | None = None
    report_progress_timeout: timedelta | None = None
    late_after_timeout: timedelta | None = None
    precondition_timeout: timedelta | None = None
    terminate_after: timedelta | None = None
    on_success: tuple[str, ...] = ()
    on_fail: tuple[str, ...] = ()
    on_late_action: tuple[str, ...] = ()
    failure_and_rerun_mode: str = "none"
    max_active_instances: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _duration(obj: ResolvedObject, name: str) -> timedelta | None:
    text = obj.string(name)
    if text is None or "#{" in text:
        return None
    try:
        return parse_period(text).to_timedelta()
    except LocatedError as exc:
        raise PlanError(exc.detail, Location(object_id=obj.id, field=name))


def _int(obj: ResolvedObject, name: str, default: int | None) -> int | None:
    text = obj.string(name)
    if text is None or "#{" in text:
        return default
    try:
        return int(text)
    except ValueError:
        raise PlanError(
            f"'{name}' must be a whole number; found {text!r}", Location(object_id=obj.id, field=name)
        )


class Planner:
    """Plans the instances of one resolved definition for one activation."""

    def __init__(
        self,
        resolved: ResolvedDefinition,
        *,
        activated_at: datetime,
        start_override: datetime | None = None,
        default_retries: int = DEFAULT_MAXIMUM_RETRIES,
    ) -> None:
        self.resolved = resolved
        self.activated_at = activated_at
        self.start_override = start_override
        self.default_retries = default_retries
        self._cache: dict[tuple[str, str], WindowSeries] = {}
        self.components = [
            obj for obj in resolved.objects.values() if obj.category in PLANNED_CATEGORIES and obj.type
        ]

    # --- schedules ---------------------------------------------------------------------------

    def schedule_of(self, obj: ResolvedObject) -> ResolvedObject | None:
        ref = obj.ref("schedule")
        return self.resolved.get(ref) if ref else None

    def _series(self, schedule: ResolvedObject, kind: str) -> WindowSeries:
        key = (schedule.id, kind)
        series = self._cache.get(key)
        if series is None:  # a race here only builds a series twice; setdefault keeps one
            series = WindowSeries(
                iter_windows(
                    schedule,
                    schedule_type=kind,
                    activated_at=self.activated_at,
                    start_override=self.start_override,
                )
            )
            series = self._cache.setdefault(key, series)
        return series

    def windows_for(
        self, obj: ResolvedObject, until: datetime, *, since: datetime | None = None
    ) -> list[Window]:
        kind = schedule_type_of(obj)
        schedule = self.schedule_of(obj)
        if kind != "ondemand" and schedule is None:
            raise PlanError(
                "no schedule: set 'schedule' on the object or on Default, or use scheduleType 'ondemand'",
                Location(object_id=obj.id, field="schedule"),
            )
        if kind == "ondemand" or schedule is None:
            return windows_until(
                schedule if schedule is not None else obj,
                schedule_type=kind,
                activated_at=self.activated_at,
                until=until,
                start_override=self.start_override,
            )
        due = self._series(schedule, kind).due(until, since=since)
        if len(due) > MAX_WINDOWS:
            raise PlanError(
                f"more than {MAX_WINDOWS} periods would be planned; set endDateTime, occurrences or an "
                "earlier --until",
                Location(object_id=schedule.id, field="period"),
            )
        return due

    def window_at(self, obj: ResolvedObject, at: datetime) -> Window | None:
        """The window of obj's schedule containing `at` (components on other schedules roll up)."""
        kind = schedule_type_of(obj)
        schedule = self.schedule_of(obj)
        if kind == "ondemand" or schedule is None:
            return Window(index=0, start=at, end=at, run_at=at)
        return self._series(schedule, kind).containing(at)

    def instance_ref(self, target_id: str, at: datetime) -> str | None:
        target = self.resolved.get(target_id)
        if target is None:
            return None
        window = self.window_at(target, at)
        return instance_id(target_id, window.start) if window else None

    # --- instances ---------------------------------------------------------------------------

    def plan_until(self, until: datetime, *, since: datetime | None = None) -> list[PlannedInstance]:
        """Every instance of every component whose window is due by `until` (start >= since)."""
        planned: dict[str, PlannedInstance] = {}
        activities = [c for c in self.components if c.category is Category.ACTIVITY]
        producers: dict[str, list[ResolvedObject]] = {}
        for act in activities:
            for out in act.refs("output"):
                producers.setdefault(out, []).append(act)
        precondition_users: dict[str, int] = {}
        for comp in self.components:
            for pre in comp.refs("precondition"):
                precondition_users[pre] = precondition_users.get(pre, 0) + 1
        for comp in self.components:
            if comp.category in (Category.PRECONDITION, Category.RESOURCE):
                continue  # planned for the objects that use them
            for window in self.windows_for(comp, until, since=since):
                if since is not None and window.start < since:
                    continue
                self._plan_component(comp, window, producers, precondition_users, planned)
        return sorted(planned.values(), key=lambda i: (i.run_at, i.scheduled_start, i.component_id))

    def _plan_component(
        self,
        comp: ResolvedObject,
        window: Window,
        producers: dict[str, list[ResolvedObject]],
        precondition_users: dict[str, int],
        planned: dict[str, PlannedInstance],
    ) -> None:
        at = window.start
        own_id = instance_id(comp.id, window.start)
        preconditions: list[str] = []
        for pre_id in comp.refs("precondition"):
            pre = self.resolved.get(pre_id)
            if pre is None:
                continue
            pid = (
                instance_id(pre_id, window.start)
                if precondition_users.get(pre_id, 0) <= 1
                else instance_id(f"{pre_id}_{comp.id}", window.start)
            )
            preconditions.append(pid)
            planned[pid] = self._instance(pre, window, pid, node=own_id)
        depends: list[str] = list(preconditions)
        inputs = tuple(i for i in (self.instance_ref(r, at) for r in comp.refs("input")) if i)
        outputs = tuple(o for o in (self.instance_ref(r, at) for r in comp.refs("output")) if o)
        runs_on = None
        if comp.category is Category.ACTIVITY:
            depends += inputs
            depends += [d for d in (self.instance_ref(r, at) for r in comp.refs("dependsOn")) if d]
            resource_id = comp.ref("runsOn")
            resource = self.resolved.get(resource_id) if resource_id else None
            if resource is not None:
                r_window = self.window_at(resource, at) or window
                runs_on = instance_id(resource.id, r_window.start)
                if runs_on not in planned:
                    planned[runs_on] = self._instance(resource, r_window, runs_on)
        elif comp.category is Category.DATA_NODE:
            # An output node is READY when its producers finish (and its preconditions pass).
            depends += [
                p
                for p in (self.instance_ref(a.id, at) for a in producers.get(comp.id, ()))
                if p and p != own_id
            ]
        planned[own_id] = self._instance(
            comp,
            window,
            own_id,
            depends_on=tuple(dict.fromkeys(depends)),
            inputs=inputs,
            outputs=outputs,
            preconditions=tuple(preconditions),
            runs_on=runs_on,
        )

    def _instance(self, obj: ResolvedObject, window: Window, iid: str, **kw: object) -> PlannedInstance:
        kind = schedule_type_of(obj) if obj.category is not Category.RESOURCE else "cron"
        mode = (obj.string("failureAndRerunMode") or "none").strip().lower()
        retries = _int(obj, "maximumRetries", self.default_retries)
        return PlannedInstance(
            id=iid,
            component_id=obj.id,
            type=obj.type or "",
            category=obj.category or Category.ACTIVITY,
            schedule_type=kind,
            scheduled_start=window.start,
            scheduled_end=window.end,
            run_at=window.run_at if obj.category is not Category.RESOURCE else window.start,
            worker_group=obj.string("workerGroup"),
            maximum_retries=retries if retries is not None else self.default_retries,
            retry_delay=_duration(obj, "retryDelay") or DEFAULT_RETRY_DELAY,
            attempt_timeout=_duration(obj, "attemptTimeout"),
            report_progress_timeout=_duration(obj, "reportProgressTimeout"),
            late_after_timeout=_duration(obj, "lateAfterTimeout"),
            precondition_timeout=_duration(obj, "preconditionTimeout"),
            terminate_after=_duration(obj, "terminateAfter"),
            on_success=obj.refs("onSuccess"),
            on_fail=obj.refs("onFail"),
            on_late_action=obj.refs("onLateAction"),
            failure_and_rerun_mode="cascade" if mode == "cascade" else "none",
            max_active_instances=_int(obj, "maxActiveInstances", None),
            **kw,  # type: ignore[arg-type]
        )


def topological_order(instances: Iterable[PlannedInstance]) -> list[PlannedInstance]:
    """Instances ordered so that each comes after what it depends on (stable by run time).

    Dependencies on instances outside the given set are ignored; a cycle raises PlanError.
    """
    items = {i.id: i for i in instances}
    state: dict[str, int] = {}
    out: list[PlannedInstance] = []

    def visit(iid: str, trail: list[str]) -> None:
        mark = state.get(iid, 0)
        if mark == 2:
            return
        if mark == 1:
            cycle = " -> ".join([*trail[trail.index(iid) :], iid])
            raise PlanError(f"dependency cycle: {cycle}", Location(object_id=items[iid].component_id))
        state[iid] = 1
        inst = items[iid]
        for dep in (*inst.depends_on, *([inst.runs_on] if inst.runs_on else [])):
            if dep in items:
                visit(dep, [*trail, iid])
        state[iid] = 2
        out.append(inst)

    for inst in sorted(items.values(), key=lambda i: (i.run_at, i.scheduled_start, i.component_id)):
        visit(inst.id, [])
    return out
