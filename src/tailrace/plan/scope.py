"""Expression scopes of instances: an object's fields plus the runtime fields of one window.

A reference from an instance (`#{input.directoryPath}`, `#{output.tableName}`) reaches the
referenced component's instance for the same window (rolled up when its schedule differs), so
`@scheduledStartTime` inside a data node's path is the data node's own window start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tailrace.definition import ResolvedDefinition, object_scope
from tailrace.expressions import Scope
from tailrace.ids import instance_id
from tailrace.plan.instances import PLANNED_CATEGORIES, PlannedInstance, Planner
from tailrace.plan.windows import Window


def runtime_fields(
    component_id: str,
    window: Window,
    *,
    pipeline_id: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "@scheduledStartTime": window.start,
        "@scheduledEndTime": window.end,
        "@id": instance_id(component_id, window.start),
        "@pipelineId": pipeline_id,
        "@sphere": "INSTANCE",
        "@componentParent": component_id,
        "@status": "WAITING_ON_DEPENDENCIES",
    }
    fields.update(extra or {})
    return fields


class ScopeBuilder:
    """Builds instance scopes for one activation of one resolved definition."""

    def __init__(
        self,
        resolved: ResolvedDefinition,
        planner: Planner,
        *,
        pipeline_id: str,
        parameters: Mapping[str, Any],
        runtime_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.resolved = resolved
        self.planner = planner
        self.pipeline_id = pipeline_id
        self.parameters = parameters
        # instance id -> runtime fields known from execution (@actualStartTime, @status, ...)
        self.runtime_overrides = runtime_overrides or {}

    def component_scope(self, component_id: str) -> Scope:
        return object_scope(
            self.resolved,
            component_id,
            runtime={"@pipelineId": self.pipeline_id, "@sphere": "COMPONENT", "@id": component_id},
            parameters=self.parameters,
            ref_scope=self.component_scope,
        )

    def action_scope(self, action_id: str, node: Scope) -> Scope:
        """An action (SnsAlarm, Terminate) fired for `node`: `#{node.@scheduledStartTime}`."""
        return object_scope(
            self.resolved,
            action_id,
            runtime={"@pipelineId": self.pipeline_id, "@id": action_id, "node": node},
            parameters=self.parameters,
            ref_scope=self.component_scope,
        )

    def window_scope(
        self,
        component_id: str,
        window: Window,
        *,
        node: Scope | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Scope:
        iid = instance_id(component_id, window.start)
        runtime = runtime_fields(component_id, window, pipeline_id=self.pipeline_id, extra=extra)
        runtime.update(self.runtime_overrides.get(iid, {}))
        if node is not None:
            runtime["node"] = node
        at = window.start

        def ref_scope(ref_id: str) -> Scope:
            target = self.resolved.get(ref_id)
            if target is None or target.category not in PLANNED_CATEGORIES:
                return self.component_scope(ref_id)
            target_window = self.planner.window_at(target, at) or window
            return self.window_scope(ref_id, target_window)

        return object_scope(
            self.resolved, component_id, runtime=runtime, parameters=self.parameters, ref_scope=ref_scope
        )

    def instance_scope(self, inst: PlannedInstance, *, extra: Mapping[str, Any] | None = None) -> Scope:
        window = Window(index=0, start=inst.scheduled_start, end=inst.scheduled_end, run_at=inst.run_at)
        node_scope = None
        if inst.node is not None:
            node_component, node_start = _split_instance_id(inst.node)
            node_obj = self.resolved.get(node_component)
            node_window = self.planner.window_at(node_obj, node_start) if node_obj else None
            node_scope = self.window_scope(node_component, node_window or window)
        return self.window_scope(inst.component_id, window, node=node_scope, extra=extra)


def _split_instance_id(iid: str) -> tuple[str, datetime]:
    from tailrace.clock import parse_dp

    body = iid[1:] if iid.startswith("@") else iid
    component, _, stamp = body.rpartition("_")
    return component, parse_dp(stamp)
