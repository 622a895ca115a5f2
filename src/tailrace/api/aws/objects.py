"""DescribeObjects' object shapes: `{id, name, fields: [{key, stringValue} | {key, refValue}]}`
for components, instances and attempts, with the runtime fields the service showed (`@status`,
`@scheduledStartTime`, `@componentParent`, `@headAttempt`, ...), and DescribePipelines' fields.
Times are written YYYY-MM-DDTHH:MM:SS in UTC; fields without a value are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tailrace.clock import format_dp
from tailrace.runtime.reads import EvaluatedField, Health
from tailrace.state import Attempt, Component, Instance, Pipeline, PipelineState, Status

Field = dict[str, str]


def text_field(key: str, value: object) -> Field:
    cls = value.__class__
    if cls is str:
        text = value
    elif cls is datetime and value.tzinfo is UTC:  # type: ignore[attr-defined]
        text = value.isoformat(timespec="seconds")[:19]  # type: ignore[attr-defined]  # format_dp, faster
    else:
        text = format_dp(value) if isinstance(value, datetime) else str(value)
    return {"key": key, "stringValue": text}  # type: ignore[dict-item]


def ref_field(key: str, ref: str) -> Field:
    return {"key": key, "refValue": ref}


def _fields(pairs: Iterable[tuple[str, object]], refs: Iterable[tuple[str, str | None]] = ()) -> list[Field]:
    out = [text_field(k, v) for k, v in pairs if v is not None]
    out += [ref_field(k, v) for k, v in refs if v]
    return out


# --- pipelines ------------------------------------------------------------------------------------


def pipeline_fields(p: Pipeline, health: Health, lookahead: timedelta) -> list[Field]:
    next_run = None
    if p.state is PipelineState.SCHEDULED and p.next_window_at is not None:
        next_run = p.next_window_at + lookahead
    return _fields(
        [
            ("@pipelineState", p.state.value),
            ("name", p.name),
            ("description", p.description),
            ("@creationTime", p.created_at),
            ("@id", p.id),
            ("@sphere", "PIPELINE"),
            ("@version", p.latest_version),
            ("@activeVersion", p.active_version),
            ("@userId", p.owner or None),
            ("@accountId", p.owner or None),
            ("pipelineCreator", p.owner or None),
            ("uniqueId", p.unique_id),
            ("@healthStatus", health.status.value if health.status else None),
            ("@healthStatusFromInstanceId", health.instance_id),
            ("@healthStatusUpdatedTime", health.updated_at),
            ("@firstActivationTime", p.activated_at),
            ("@lastActivationTime", p.last_activated_at),
            ("@latestRunTime", p.latest_run_at),
            ("@nextRunTime", next_run),
            ("@finishedTime", p.finished_at),
            ("@lastDeactivatedTime", p.deactivated_at),
        ]
    )


# --- objects --------------------------------------------------------------------------------------


def component_object(c: Component) -> dict[str, Any]:
    fields: list[Field] = []
    for key, value in c.fields.items():
        for item in value if isinstance(value, list) else [value]:
            fields.append(ref_field(key, item["ref"]) if isinstance(item, dict) else text_field(key, item))
    fields += _fields(
        [
            ("@sphere", "COMPONENT"),
            ("@status", c.status.value),
            ("@pipelineId", c.pipeline_id),
            ("@version", c.version),
        ]
    )
    return {"id": c.id, "name": c.name, "fields": fields}


def dp_text(value: datetime) -> str:
    """format_dp, at a third of its cost for the store's (UTC) values: thousands per page."""
    return value.isoformat(timespec="seconds")[:19] if value.tzinfo is UTC else format_dp(value)


_STATUS_TEXT = {s: s.value for s in Status}
_S, _R = "stringValue", "refValue"


def instance_runtime(inst: Instance) -> list[Field]:
    # Written out rather than through _fields: DescribeObjects builds this for every instance
    # of every page. Fields without a value are left out, as everywhere.
    out: list[Field] = [
        {"key": "@id", _S: inst.id},
        {"key": "@sphere", _S: "INSTANCE"},
        {"key": "@status", _S: _STATUS_TEXT[inst.status]},
        {"key": "type", _S: inst.type},
        {"key": "@scheduledStartTime", _S: dp_text(inst.scheduled_start)},
        {"key": "@scheduledEndTime", _S: dp_text(inst.scheduled_end)},
    ]
    if inst.started_at is not None:
        out.append({"key": "@actualStartTime", _S: dp_text(inst.started_at)})
    if inst.ended_at is not None:
        out.append({"key": "@actualEndTime", _S: dp_text(inst.ended_at)})
    out.append({"key": "@attemptCount", _S: str(inst.attempt_count)})
    out.append({"key": "@triesLeft", _S: str(inst.tries_left)})
    if inst.resource_id is not None:
        out.append({"key": "@resourceId", _S: inst.resource_id})
    out.append({"key": "@pipelineId", _S: inst.pipeline_id})
    out.append({"key": "@version", _S: str(inst.definition_version)})
    if inst.worker_group is not None:
        out.append({"key": "workerGroup", _S: inst.worker_group})
    if inst.error_message is not None:
        out.append({"key": "errorMessage", _S: inst.error_message})
    if inst.component_id:
        out.append({"key": "@componentParent", _R: inst.component_id})
        out.append({"key": "parent", _R: inst.component_id})
    for key, ref in (
        ("@headAttempt", inst.head_attempt),
        ("@resource", inst.resource_id),
        ("@cascadeFailedOn", inst.cascade_failed_on),
    ):
        if ref:
            out.append({"key": key, _R: ref})
    planned = inst.spec
    out += [{"key": "input", _R: i} for i in planned.get("inputs") or () if i]
    out += [{"key": "output", _R: o} for o in planned.get("outputs") or () if o]
    out += [{"key": "precondition", _R: p} for p in inst.preconditions if p]
    if planned.get("node"):
        out.append({"key": "node", _R: planned["node"]})
    return out


def attempt_runtime(a: Attempt, inst: Instance | None) -> list[Field]:
    return _fields(
        [
            ("@id", a.id),
            ("@sphere", "ATTEMPT"),
            ("@status", a.status.value),
            ("@attemptNumber", a.number),
            ("@actualStartTime", a.started_at),
            ("@actualEndTime", a.ended_at),
            ("@scheduledStartTime", inst.scheduled_start if inst else None),
            ("@scheduledEndTime", inst.scheduled_end if inst else None),
            ("errorId", a.error_id),
            ("errorMessage", a.error_message),
            ("errorStackTrace", a.error_stack_trace),
            ("hostname", a.hostname),
            ("@taskrunnerId", a.runner_id),
            ("reportProgressTime", a.heartbeat_at),
            ("cancellationReason", a.cancel_reason),
            ("@logLocation", a.log_location),
            ("@pipelineId", a.pipeline_id),
        ],
        [("@instanceParent", a.instance_id), ("@componentParent", inst.component_id if inst else None)],
    )


def evaluated(found: Sequence[EvaluatedField]) -> list[Field]:
    """The runtime's evaluated component fields as DescribeObjects shows them."""
    return [ref_field(f.key, f.value) if f.ref else text_field(f.key, f.value) for f in found]


def _shown_on_instances(c: Component) -> list[Field]:
    """The component's fields an instance shows besides its own (its refs point at instances)."""
    skip = {"input", "output", "precondition", "parent"}
    return [f for f in component_object(c)["fields"] if f["key"] not in skip and not f["key"].startswith("@")]


def component_fields(
    component_id: str, components: Mapping[str, Component], shown: dict[str, list[Field]]
) -> list[Field]:
    """The fields an instance of the component shows from it; `shown` keeps them per component
    (pages hold many instances of few components)."""
    own = shown.get(component_id)
    if own is None:
        c = components.get(component_id)
        own = shown[component_id] = _shown_on_instances(c) if c is not None else []
    return own


def waiting_on(inst: Instance, deps: Mapping[str, Instance]) -> list[Field]:
    """`@waitingOn` of an instance waiting on dependencies: those not FINISHED yet."""
    if inst.status is not Status.WAITING_ON_DEPENDENCIES:
        return []
    return [
        ref_field("@waitingOn", d)
        for d in (*inst.depends_on, *inst.preconditions)
        if d not in deps or deps[d].status is not Status.FINISHED
    ]
