"""A pipeline's active definition as the scheduler and the workers use it, and the conversion
between planned instances (tailrace.plan) and stored instance records (tailrace.state).

The planned instance is kept whole in the record's `spec`, so a worker runs exactly what the
scheduler planned, whatever happened to the definition since.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tailrace.clock import parse_dp, utc
from tailrace.definition import (
    Category,
    PipelineDefinition,
    ResolvedDefinition,
    ResolvedObject,
    effective_parameters,
    from_wire,
    resolve,
)
from tailrace.plan import PlannedInstance, Planner, ScopeBuilder, Window, iter_windows, schedule_type_of
from tailrace.state import Instance, Pipeline, Status

SERVICE_QUEUE = "@service"
"""Tasks the service runs itself (preconditions that name no runner): the scheduler's own pool."""
RESOURCE_QUEUE = "@resources"
"""Resource instances waiting for a host to start their local pool."""


def worker_group_queue(group: str) -> str:
    return f"wg:{group}"


def resource_queue(pipeline_id: str, resource_instance: str) -> str:
    return f"res:{pipeline_id}/{resource_instance}"


# --- planned instance <-> JSON --------------------------------------------------------------------

_FIELDS = {f.name: str(f.type) for f in dataclasses.fields(PlannedInstance)}


def planned_to_spec(planned: PlannedInstance) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(planned, name)
        if isinstance(value, timedelta):
            value = value.total_seconds()
        elif isinstance(value, datetime):
            value = utc(value).isoformat()
        elif isinstance(value, Category):
            value = value.name
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[name] = value
    return out


def planned_from_spec(spec: Mapping[str, Any]) -> PlannedInstance:
    kwargs: dict[str, Any] = {}
    for name, kind in _FIELDS.items():
        if name not in spec:
            continue  # a field added to PlannedInstance after this record was planned: its default
        value = spec[name]
        if value is not None:
            if "timedelta" in kind:
                value = timedelta(seconds=value)
            elif "datetime" in kind:
                value = parse_dp(value)
            elif "Category" in kind:
                value = Category[value]
            elif "tuple" in kind:
                value = tuple(value)
            elif "dict" in kind:
                value = dict(value)
        kwargs[name] = value
    return PlannedInstance(**kwargs)


def seconds(spec: Mapping[str, Any], name: str) -> timedelta | None:
    value = spec.get(name)
    return None if value is None else timedelta(seconds=float(value))


# --- the active definition ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ActiveDefinition:
    pipeline_id: str
    version: int
    definition: PipelineDefinition
    resolved: ResolvedDefinition
    parameters: Mapping[str, Any]
    activated_at: datetime
    """What FIRST_ACTIVATION_DATE_TIME (or an on-demand run) starts from."""
    start_override: datetime | None
    planner: Planner
    scopes: ScopeBuilder
    anchor: ResolvedObject | None
    """The object whose schedule drives the pipeline's windows (Default, or the only activity)."""
    _log_roots: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    """log_root's answers: it is evaluated while a task is claimed, inside the metadata
    transaction, so an expensive pipelineLogUri costs its owner once, not every claim."""

    @property
    def schedule_type(self) -> str:
        return schedule_type_of(self.anchor) if self.anchor is not None else "cron"

    def windows(self, first: int = 0) -> Iterator[Window]:
        """The pipeline's windows in order, from index `first` (unbounded unless the schedule ends)."""
        if self.anchor is None:
            return iter(())
        kind = self.schedule_type
        schedule = self.planner.schedule_of(self.anchor)
        windows = iter_windows(
            schedule if schedule is not None else self.anchor,
            schedule_type=kind,
            activated_at=self.activated_at,
            start_override=self.start_override,
        )
        return itertools.islice(windows, first, None)

    def plan(self, window: Window) -> list[PlannedInstance]:
        """The instances of one window (as tailrace.plan.plan_window, on the cached planner)."""
        instances = self.planner.plan_until(max(window.end, window.run_at), since=window.start)
        return [
            i
            for i in instances
            if i.scheduled_start <= window.start < i.scheduled_end or i.scheduled_start == window.start
        ]

    def component(self, component_id: str) -> ResolvedObject | None:
        return self.resolved.get(component_id)

    def log_root(self, component_id: str) -> str | None:
        """The component's pipelineLogUri, evaluated (once per component); None when not set."""
        if component_id not in self._log_roots:
            self._log_roots[component_id] = self._eval_log_root(component_id)
        return self._log_roots[component_id]

    def _eval_log_root(self, component_id: str) -> str | None:
        from tailrace.expressions import render

        obj = self.resolved.get(component_id)
        raw = obj.string("pipelineLogUri") if obj is not None else None
        if not raw:
            return None
        try:
            value = render(raw, self.scopes.component_scope(component_id))
        except Exception:  # a broken pipelineLogUri falls back to the data directory
            return None
        return value if isinstance(value, str) else (value[0] if value else None)


def main_anchor(resolved: ResolvedDefinition, planner: Planner) -> ResolvedObject | None:
    # Same choice as tailrace.plan.schedule_windows: Default when it carries the schedule,
    # otherwise the first activity.
    default = resolved.default
    if default is not None and (default.ref("schedule") or default.string("scheduleType")):
        return default
    activities = [c for c in planner.components if c.category is Category.ACTIVITY]
    return activities[0] if activities else None


def build_active(
    *,
    pipeline_id: str,
    version: int,
    wire: Mapping[str, Any],
    first_activated_at: datetime,
    activation_time: datetime,
    start_override: datetime | None,
) -> ActiveDefinition:
    """Resolve a stored definition for one activation.

    On-demand pipelines plan from this activation's time; scheduled ones from the first
    activation (FIRST_ACTIVATION_DATE_TIME keeps its meaning across re-activations).
    """
    definition = from_wire(wire)
    parameters = effective_parameters(definition, definition.values)
    resolved = resolve(definition)
    probe = Planner(resolved, activated_at=first_activated_at, start_override=start_override)
    anchor = main_anchor(resolved, probe)
    ondemand = anchor is not None and schedule_type_of(anchor) == "ondemand"
    activated_at = activation_time if ondemand else first_activated_at
    planner = (
        probe
        if activated_at == first_activated_at
        else Planner(resolved, activated_at=activated_at, start_override=start_override)
    )
    scopes = ScopeBuilder(resolved, planner, pipeline_id=pipeline_id, parameters=parameters)
    return ActiveDefinition(
        pipeline_id=pipeline_id,
        version=version,
        definition=definition,
        resolved=resolved,
        parameters=parameters,
        activated_at=activated_at,
        start_override=start_override,
        planner=planner,
        scopes=scopes,
        anchor=anchor,
    )


class DefinitionCache:
    """Active definitions by (pipeline, version, activation); resolving is not free."""

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[tuple[Any, ...], ActiveDefinition] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, pipeline: Pipeline, version: int, wire_loader: Any) -> ActiveDefinition:
        """The active definition of `pipeline` at `version`; wire_loader(version) reads the wire
        form when it is not cached."""
        first = pipeline.activated_at or pipeline.created_at
        current = pipeline.last_activated_at or first
        key = (pipeline.id, version, first, current, pipeline.start_override)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        active = build_active(
            pipeline_id=pipeline.id,
            version=version,
            wire=wire_loader(version),
            first_activated_at=first,
            activation_time=current,
            start_override=pipeline.start_override,
        )
        with self._lock:
            self._items[key] = active
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return active


# --- planned instance -> record -------------------------------------------------------------------


def queue_of(planned: PlannedInstance, batch: Mapping[str, PlannedInstance], pipeline_id: str) -> str | None:
    """Where attempts of this instance are handed out, or None for instances that never run."""
    category = planned.category
    if category is Category.RESOURCE:
        return RESOURCE_QUEUE
    if category is Category.ACTIVITY:
        if planned.runs_on:
            return resource_queue(pipeline_id, planned.runs_on)
        return worker_group_queue(planned.worker_group) if planned.worker_group else SERVICE_QUEUE
    if category is Category.PRECONDITION:
        # A precondition runs where the object it guards runs; one that guards a data node (or
        # names no runner) is checked by the service itself.
        node = batch.get(planned.node) if planned.node else None
        if node is not None and node.category is Category.ACTIVITY and node.runs_on:
            return resource_queue(pipeline_id, node.runs_on)
        group = planned.worker_group or (node.worker_group if node is not None else None)
        if group and node is not None and node.category is Category.ACTIVITY:
            return worker_group_queue(group)
        return SERVICE_QUEUE
    return None


def _guarded_resource(planned: PlannedInstance, batch: Mapping[str, PlannedInstance]) -> str | None:
    """The resource a precondition runs on: its activity's (so it launches and outlives it)."""
    node = batch.get(planned.node) if planned.category is Category.PRECONDITION and planned.node else None
    return node.runs_on if node is not None and node.category is Category.ACTIVITY else None


def to_records(
    planned: Sequence[PlannedInstance],
    *,
    pipeline_id: str,
    window: int,
    version: int,
    now: datetime,
    paused_components: frozenset[str] = frozenset(),
) -> list[Instance]:
    batch = {p.id: p for p in planned}
    out: list[Instance] = []
    for p in planned:
        late_at = None
        if p.late_after_timeout is not None and p.schedule_type != "ondemand":
            late_at = p.run_at + p.late_after_timeout
        paused = p.component_id in paused_components
        # An instance whose run time has come is evaluated as it is created: only its late
        # deadline is left for the scheduler's timers.
        timers = [t for t in (p.run_at if p.run_at > now else None, late_at) if t is not None]
        due = min(timers) if timers and not paused else None
        if p.category is Category.RESOURCE:
            due = late_at  # launched when an activity needs it, not at a time
        out.append(
            Instance(
                pipeline_id=pipeline_id,
                id=p.id,
                component_id=p.component_id,
                category=p.category.name,
                type=p.type,
                window=window,
                scheduled_start=p.scheduled_start,
                scheduled_end=p.scheduled_end,
                run_at=p.run_at,
                status=Status.PAUSED if paused else Status.WAITING_ON_DEPENDENCIES,
                definition_version=version,
                queue=queue_of(p, batch, pipeline_id),
                worker_group=p.worker_group,
                resource_id=p.runs_on or _guarded_resource(p, batch),
                depends_on=p.depends_on,
                preconditions=p.preconditions,
                tries_left=p.maximum_retries,
                due_at=due,
                late_at=late_at,
                spec=planned_to_spec(p),
                created_at=now,
                updated_at=now,
            )
        )
    return out
