"""The service's read operations in the API's shapes: DescribePipelines, ListPipelines,
DescribeObjects, QueryObjects, EvaluateExpression, and the taskObject of PollForTask.

Objects are described as `{id, name, fields: [{key, stringValue} | {key, refValue}]}` with the
runtime fields the service showed (`@status`, `@scheduledStartTime`, `@componentParent`,
`@headAttempt`, ...). Times are written YYYY-MM-DDTHH:MM:SS in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tailrace.clock import format_dp
from tailrace.errors import TailraceError
from tailrace.expressions import Scope, render
from tailrace.runtime.activation import ActiveDefinition, planned_from_spec
from tailrace.runtime.errors import InvalidRequest
from tailrace.state import Attempt, Component, Instance, Pipeline, PipelineState, Status, Transaction

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService
    from tailrace.runtime.tasks import Task

OBJECTS_PAGE = 100
SPHERES = ("COMPONENT", "INSTANCE", "ATTEMPT")
ERROR_STATES = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT})

Field = dict[str, str]


def _s(key: str, value: object) -> Field:
    text = format_dp(value) if isinstance(value, datetime) else str(value)
    return {"key": key, "stringValue": text}


def _r(key: str, ref: str) -> Field:
    return {"key": key, "refValue": ref}


def _fields(pairs: Iterable[tuple[str, object]], refs: Iterable[tuple[str, str | None]] = ()) -> list[Field]:
    out = [_s(k, v) for k, v in pairs if v is not None]
    out += [_r(k, v) for k, v in refs if v]
    return out


# --- pipelines ------------------------------------------------------------------------------------


def pipeline_fields(service: PipelineService, tx: Transaction, p: Pipeline) -> list[Field]:
    last = tx.instances.latest_ended(p.id, category="ACTIVITY")
    health = None
    if last is not None:
        health = "ERROR" if last.status in ERROR_STATES else "HEALTHY"
    next_run = None
    if p.state is PipelineState.SCHEDULED and p.next_window_at is not None:
        next_run = p.next_window_at + service.config.lookahead
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
            ("@healthStatus", health),
            ("@healthStatusFromInstanceId", last.id if last else None),
            ("@healthStatusUpdatedTime", last.ended_at if last else None),
            ("@firstActivationTime", p.activated_at),
            ("@lastActivationTime", p.last_activated_at),
            ("@latestRunTime", p.latest_run_at),
            ("@nextRunTime", next_run),
            ("@finishedTime", p.finished_at),
            ("@lastDeactivatedTime", p.deactivated_at),
        ]
    )


def describe_pipelines(service: PipelineService, pipeline_ids: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    with service.store.transaction(readonly=True) as tx:
        for pid in pipeline_ids:
            p = service._get(tx, pid)  # raises PipelineNotFound / PipelineDeleted
            out.append(
                {
                    "pipelineId": p.id,
                    "name": p.name,
                    "fields": pipeline_fields(service, tx, p),
                    "description": p.description,
                    "tags": [{"key": k, "value": v} for k, v in p.tags.items()],
                }
            )
    return out


def list_pipelines(
    service: PipelineService, *, marker: str | None, owner: str | None, limit: int
) -> dict[str, Any]:
    with service.store.transaction(readonly=True) as tx:
        page = tx.pipelines.page(owner=owner, after=marker or None, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    out: dict[str, Any] = {
        "pipelineIdList": [{"id": p.id, "name": p.name} for p in page],
        "hasMoreResults": more,
    }
    if more:
        out["marker"] = page[-1].id
    return out


# --- objects --------------------------------------------------------------------------------------


def component_object(c: Component) -> dict[str, Any]:
    fields: list[Field] = []
    for key, value in c.fields.items():
        for item in value if isinstance(value, list) else [value]:
            fields.append(_r(key, item["ref"]) if isinstance(item, dict) else _s(key, item))
    fields += _fields(
        [
            ("@sphere", "COMPONENT"),
            ("@status", c.status.value),
            ("@pipelineId", c.pipeline_id),
            ("@version", c.version),
        ]
    )
    return {"id": c.id, "name": c.name, "fields": fields}


def instance_runtime(inst: Instance) -> list[Field]:
    planned = inst.spec
    refs = [
        ("@componentParent", inst.component_id),
        ("parent", inst.component_id),
        ("@headAttempt", inst.head_attempt),
    ]
    refs += [("@resource", inst.resource_id), ("@cascadeFailedOn", inst.cascade_failed_on)]
    refs += [("input", i) for i in planned.get("inputs") or ()]
    refs += [("output", o) for o in planned.get("outputs") or ()]
    refs += [("precondition", p) for p in inst.preconditions]
    if planned.get("node"):
        refs.append(("node", planned["node"]))
    return _fields(
        [
            ("@id", inst.id),
            ("@sphere", "INSTANCE"),
            ("@status", inst.status.value),
            ("type", inst.type),
            ("@scheduledStartTime", inst.scheduled_start),
            ("@scheduledEndTime", inst.scheduled_end),
            ("@actualStartTime", inst.started_at),
            ("@actualEndTime", inst.ended_at),
            ("@attemptCount", inst.attempt_count),
            ("@triesLeft", inst.tries_left),
            ("@resourceId", inst.resource_id),
            ("@pipelineId", inst.pipeline_id),
            ("@version", inst.definition_version),
            ("workerGroup", inst.worker_group),
            ("errorMessage", inst.error_message),
        ],
        refs,
    )


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


def _active(service: PipelineService, tx: Transaction, pipeline: Pipeline, version: int) -> ActiveDefinition:
    def load(v: int) -> Mapping[str, Any]:
        found = tx.definitions.find(pipeline.id, v)
        if found is None:
            raise TailraceError(f"definition version {v} of {pipeline.id} is missing")
        return found.wire

    return service.definitions.get(pipeline, version, load)


def instance_scope(active: ActiveDefinition, inst: Instance, attempt: Attempt | None = None) -> Scope:
    extra: dict[str, Any] = {"@status": inst.status.value, "@attemptCount": inst.attempt_count}
    if inst.started_at:
        extra["@actualStartTime"] = inst.started_at
    if inst.ended_at:
        extra["@actualEndTime"] = inst.ended_at
    if attempt is not None:
        extra["@status"] = attempt.status.value
    return active.scopes.instance_scope(planned_from_spec(inst.spec), extra=extra)


def _evaluated(active: ActiveDefinition, component_id: str, scope: Scope) -> list[Field]:
    """The component's fields with #{...} evaluated in `scope` (left as written if they fail)."""
    obj = active.resolved.get(component_id)
    if obj is None:
        return []
    out: list[Field] = []
    for key, value in obj.fields.items():
        if key in ("input", "output", "precondition", "parent"):
            continue  # the instance's own refs point at instances
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if hasattr(item, "id"):
                out.append(_r(key, item.id))
                continue
            text = item
            if "#{" in item:
                try:
                    rendered = render(item, scope)
                    text = rendered if isinstance(rendered, str) else ",".join(rendered)
                except TailraceError:
                    pass
            out.append(_s(key, text))
    return out


def describe_objects(
    service: PipelineService,
    pipeline_id: str,
    object_ids: Sequence[str],
    *,
    evaluate_expressions: bool,
    marker: str | None,
) -> dict[str, Any]:
    start = int(marker) if marker and marker.isdigit() else 0
    page = list(object_ids)[start : start + OBJECTS_PAGE]
    objects: list[dict[str, Any]] = []
    with service.store.transaction(readonly=True) as tx:
        pipeline = service._get(tx, pipeline_id)
        components = {c.id: c for c in tx.components.list(pipeline_id)}
        for oid in page:
            if oid in components:
                objects.append(component_object(components[oid]))
                continue
            attempt = tx.attempts.find(pipeline_id, oid) if "_Attempt=" in oid else None
            inst = tx.instances.find(pipeline_id, attempt.instance_id if attempt else oid)
            if inst is None:
                continue
            fields = attempt_runtime(attempt, inst) if attempt else instance_runtime(inst)
            comp = components.get(inst.component_id)
            if evaluate_expressions:
                active = _active(service, tx, pipeline, inst.definition_version)
                fields = _evaluated(active, inst.component_id, instance_scope(active, inst, attempt)) + fields
            elif comp is not None:
                skip = {"input", "output", "precondition", "parent"}
                fields = [
                    f
                    for f in component_object(comp)["fields"]
                    if f["key"] not in skip and not f["key"].startswith("@")
                ] + fields
            if inst.status is Status.WAITING_ON_DEPENDENCIES and not attempt:
                deps = tx.instances.find_many(pipeline_id, (*inst.depends_on, *inst.preconditions))
                wanted = (*inst.depends_on, *inst.preconditions)
                fields += [
                    _r("@waitingOn", d)
                    for d in wanted
                    if d not in deps or deps[d].status is not Status.FINISHED
                ]
            objects.append({"id": oid, "name": oid, "fields": fields})
    more = start + OBJECTS_PAGE < len(object_ids)
    out: dict[str, Any] = {"pipelineObjects": objects, "hasMoreResults": more}
    if more:
        out["marker"] = str(start + OBJECTS_PAGE)
    return out


# --- QueryObjects ---------------------------------------------------------------------------------


def _matches(fields: list[Field], selectors: Sequence[Mapping[str, Any]]) -> bool:
    for sel in selectors:
        name = sel.get("fieldName")
        op = sel.get("operator") or {}
        kind = str(op.get("type", "EQ")).upper()
        values = [str(v) for v in op.get("values") or []]
        wanted_key = "refValue" if kind == "REF_EQ" else "stringValue"
        found = [f[wanted_key] for f in fields if f["key"] == name and wanted_key in f]
        if kind in ("EQ", "REF_EQ") and (not values or values[0] not in found):
            return False
        if kind == "LE" and not any(v <= values[0] for v in found):
            return False
        if kind == "GE" and not any(v >= values[0] for v in found):
            return False
        if kind == "BETWEEN" and not (len(values) >= 2 and any(values[0] <= v <= values[1] for v in found)):
            return False
        if kind not in ("EQ", "REF_EQ", "LE", "GE", "BETWEEN"):
            raise InvalidRequest(f"operator type must be EQ, REF_EQ, LE, GE or BETWEEN; found {kind!r}")
    return True


def query_objects(
    service: PipelineService,
    pipeline_id: str,
    sphere: str,
    *,
    selectors: Sequence[Mapping[str, Any]],
    limit: int,
    marker: str | None,
) -> dict[str, Any]:
    """Ids of the sphere's objects matching every selector. As the service did, the page is cut
    before filtering: a page may hold fewer ids than `limit` (even none) and still have more."""
    sphere = sphere.upper()
    if sphere not in SPHERES:
        raise InvalidRequest(f"sphere must be one of {', '.join(SPHERES)}; found {sphere!r}")
    if len(selectors) > 10:
        raise InvalidRequest(f"at most 10 selectors; found {len(selectors)}")
    limit = max(1, min(int(limit or 100), 500))
    after = marker or None
    with service.store.transaction(readonly=True) as tx:
        service._get(tx, pipeline_id)
        rows: list[tuple[str, list[Field]]]
        if sphere == "COMPONENT":
            comps = [c for c in tx.components.list(pipeline_id) if after is None or c.id > after][: limit + 1]
            rows = [(c.id, component_object(c)["fields"] + [_s("name", c.name)]) for c in comps]
        elif sphere == "INSTANCE":
            insts = tx.instances.page(pipeline_id, after=after, limit=limit + 1)
            rows = [(i.id, [*instance_runtime(i), _s("name", i.id)]) for i in insts]
        else:
            attempts = tx.attempts.page(pipeline_id, after=after, limit=limit + 1)
            parents = tx.instances.find_many(pipeline_id, {a.instance_id for a in attempts})
            rows = [
                (a.id, [*attempt_runtime(a, parents.get(a.instance_id)), _s("name", a.id)]) for a in attempts
            ]
    more = len(rows) > limit
    rows = rows[:limit]
    out: dict[str, Any] = {
        "ids": [oid for oid, fields in rows if _matches(fields, selectors)],
        "hasMoreResults": more,
    }
    if more:
        out["marker"] = rows[-1][0]
    return out


# --- EvaluateExpression and PollForTask's taskObject -----------------------------------------------


def evaluate_expression(service: PipelineService, pipeline_id: str, object_id: str, expression: str) -> str:
    with service.store.transaction(readonly=True) as tx:
        pipeline = service._get(tx, pipeline_id)
        version = pipeline.active_version or pipeline.latest_version
        if version is None:
            raise InvalidRequest(f"pipeline {pipeline_id} has no definition")
        active = _active(service, tx, pipeline, version)
        attempt = tx.attempts.find(pipeline_id, object_id) if "_Attempt=" in object_id else None
        inst = tx.instances.find(pipeline_id, attempt.instance_id if attempt else object_id)
        if inst is not None:
            active = _active(service, tx, pipeline, inst.definition_version)
            scope = instance_scope(active, inst, attempt)
        elif active.resolved.get(object_id) is not None:
            scope = active.scopes.component_scope(object_id)
        else:
            raise InvalidRequest(f"no object {object_id!r} in pipeline {pipeline_id}")
    try:
        value = render(expression, scope)
    except TailraceError as exc:
        raise InvalidRequest(f"cannot evaluate the expression: {exc}")
    return value if isinstance(value, str) else ",".join(value)


def task_object(service: PipelineService, task: Task) -> dict[str, Any]:
    """PollForTask's taskObject: the attempt with its component's fields evaluated for this
    instance, plus the instances it reads and writes."""
    inst = task.instance
    with service.store.transaction(readonly=True) as tx:
        pipeline = service._get(tx, task.pipeline_id)
        attempt = tx.attempts.find(task.pipeline_id, task.attempt_id)
        active = _active(service, tx, pipeline, inst.definition_version)
        related = tx.instances.find_many(
            task.pipeline_id, (*(inst.spec.get("inputs") or ()), *(inst.spec.get("outputs") or ()))
        )
    objects: dict[str, Any] = {}
    scope = instance_scope(active, inst, attempt)
    fields = _evaluated(active, inst.component_id, scope)
    fields += attempt_runtime(attempt, inst) if attempt else []
    fields += [f for f in instance_runtime(inst) if f["key"] in ("input", "output", "@resource")]
    objects[task.attempt_id] = {"id": task.attempt_id, "name": task.attempt_id, "fields": fields}
    for rid, other in related.items():
        rscope = instance_scope(active, other)
        objects[rid] = {
            "id": rid,
            "name": rid,
            "fields": _evaluated(active, other.component_id, rscope) + instance_runtime(other),
        }
    return {
        "taskId": task.task_id,
        "pipelineId": task.pipeline_id,
        "attemptId": task.attempt_id,
        "objects": objects,
    }
