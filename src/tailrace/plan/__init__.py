"""Planning (layer 2): pure functions of (definition, clock) -> windows, instances, dependencies."""

from __future__ import annotations

from datetime import datetime

from tailrace.definition import ResolvedDefinition
from tailrace.plan.instances import (
    DEFAULT_MAXIMUM_RETRIES,
    PLANNED_CATEGORIES,
    PlannedInstance,
    Planner,
    topological_order,
)
from tailrace.plan.scope import ScopeBuilder, runtime_fields
from tailrace.plan.windows import PlanError, Window, iter_windows, schedule_type_of, windows_until

__all__ = [
    "DEFAULT_MAXIMUM_RETRIES",
    "PLANNED_CATEGORIES",
    "PlanError",
    "PlannedInstance",
    "Planner",
    "ScopeBuilder",
    "Window",
    "iter_windows",
    "plan_until",
    "plan_window",
    "runtime_fields",
    "schedule_type_of",
    "schedule_windows",
    "topological_order",
    "windows_until",
]


def plan_until(
    resolved: ResolvedDefinition,
    *,
    activated_at: datetime,
    until: datetime,
    start_override: datetime | None = None,
    since: datetime | None = None,
) -> list[PlannedInstance]:
    """Every instance due by `until` (see Planner.plan_until)."""
    planner = Planner(resolved, activated_at=activated_at, start_override=start_override)
    return planner.plan_until(until, since=since)


def schedule_windows(
    resolved: ResolvedDefinition,
    *,
    activated_at: datetime,
    until: datetime,
    start_override: datetime | None = None,
) -> list[Window]:
    """Windows of the pipeline's main schedule (Default's, or the only activity's), due by until."""
    planner = Planner(resolved, activated_at=activated_at, start_override=start_override)
    default = resolved.default
    anchor = (
        default
        if default is not None and (default.ref("schedule") or default.string("scheduleType"))
        else None
    )
    if anchor is None:
        activities = [
            c for c in planner.components if c.category is not None and c.category.name == "ACTIVITY"
        ]
        anchor = activities[0] if activities else None
    if anchor is None:
        return []
    return planner.windows_for(anchor, until)


def plan_window(
    resolved: ResolvedDefinition,
    window: Window,
    *,
    activated_at: datetime,
    start_override: datetime | None = None,
) -> list[PlannedInstance]:
    """The instances whose window starts at window.start, with their resources and preconditions."""
    planner = Planner(resolved, activated_at=activated_at, start_override=start_override)
    instances = planner.plan_until(max(window.end, window.run_at), since=window.start)
    return [
        i
        for i in instances
        if i.scheduled_start <= window.start < i.scheduled_end or i.scheduled_start == window.start
    ]
