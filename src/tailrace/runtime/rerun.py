"""RERUN after a corrected definition: an instance started over takes the pipeline's ACTIVE
definition (AWS's edit -> put -> activate -> rerun workflow), not the version it was made with.

What a rerun takes from the active definition: everything evaluated when an attempt runs (the
command, script, arguments, stage, data node paths, worker group, timeouts, retries and retry
delay, onSuccess/onFail/onLateAction, failureAndRerunMode). What it keeps: its id and schedule
period, and its place in the graph (dependencies, preconditions, inputs, outputs and the
resource it runs on), because the other instances it is linked to were made by the old version.
An instance whose period the new schedule no longer has reruns as it was made. Without a new
activation the active definition is unchanged, so a put alone changes no rerun.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tailrace.definition import Category
from tailrace.plan import Window
from tailrace.runtime.activation import SERVICE_QUEUE, ActiveDefinition, planned_to_spec, worker_group_queue
from tailrace.state import Instance

# Spec keys that link the instance to others; a rerun keeps them as they were.
GRAPH_KEYS = ("depends_on", "inputs", "outputs", "preconditions", "runs_on", "node")


def repinned(inst: Instance, version: int | None, load: Callable[[int], ActiveDefinition]) -> dict[str, Any]:
    """The instance changes that move `inst` onto definition `version` (empty: it stays)."""
    if version is None or version == inst.definition_version:
        return {}
    active = load(version)
    if active.component(inst.component_id) is None:
        return {}
    window = Window(index=inst.window, start=inst.scheduled_start, end=inst.scheduled_end, run_at=inst.run_at)
    planned = next((p for p in active.plan(window) if p.id == inst.id), None)
    if planned is None:
        return {}
    spec = planned_to_spec(planned)
    spec.update({k: inst.spec[k] for k in GRAPH_KEYS if k in inst.spec})
    changes: dict[str, Any] = {
        "definition_version": version,
        "type": planned.type,
        "worker_group": planned.worker_group,
        "spec": spec,
    }
    # Activities handed to a worker group (not to a resource) follow the new workerGroup.
    if planned.category is Category.ACTIVITY and inst.resource_id is None:
        changes["queue"] = worker_group_queue(planned.worker_group) if planned.worker_group else SERVICE_QUEUE
    return changes
