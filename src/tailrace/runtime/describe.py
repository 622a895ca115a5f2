"""The service's read operations in the API's shapes: DescribePipelines, ListPipelines,
DescribeObjects, QueryObjects, EvaluateExpression, and the taskObject of PollForTask.

Objects are described as `{id, name, fields: [{key, stringValue} | {key, refValue}]}` with the
runtime fields the service showed (`@status`, `@scheduledStartTime`, `@componentParent`,
`@headAttempt`, ...). Times are written YYYY-MM-DDTHH:MM:SS in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tailrace.clock import format_dp
from tailrace.errors import TailraceError
from tailrace.expressions import Scope, render
from tailrace.runtime.activation import ActiveDefinition, planned_from_spec
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.selectors import matches, parse_selectors, to_store
from tailrace.state import (
    Attempt,
    Component,
    Instance,
    Pipeline,
    PipelineNotFound,
    PipelineState,
    Status,
    Transaction,
)

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService
    from tailrace.runtime.tasks import Task

OBJECTS_PAGE = 100
SPHERES = ("COMPONENT", "INSTANCE", "ATTEMPT")
ERROR_STATES = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT})

Field = dict[str, str]


def _s(key: str, value: object) -> Field:
    cls = value.__class__
    if cls is str:
        text = value
    elif cls is datetime and value.tzinfo is UTC:  # type: ignore[attr-defined]
        text = value.isoformat(timespec="seconds")[:19]  # type: ignore[attr-defined]  # format_dp, faster
    else:
        text = format_dp(value) if isinstance(value, datetime) else str(value)
    return {"key": key, "stringValue": text}  # type: ignore[dict-item]


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


def owned_pipeline(
    service: PipelineService, tx: Transaction, pipeline_id: str, owner: str | None
) -> Pipeline:
    """The pipeline, if `owner` (None: anyone) may see it; another owner's looks missing."""
    pipeline = service._get(tx, pipeline_id)
    if owner is not None and (pipeline.owner or "") != owner:
        raise PipelineNotFound(pipeline_id)
    return pipeline


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
    owner: str | None = None,
) -> dict[str, Any]:
    start = int(marker) if marker and marker.isdigit() else 0
    page = list(object_ids)[start : start + OBJECTS_PAGE]
    objects: list[dict[str, Any]] = []
    with service.store.transaction(readonly=True) as tx:
        pipeline = owned_pipeline(service, tx, pipeline_id, owner)
        components = {c.id: c for c in tx.components.list(pipeline_id)}
        # One read per kind for the whole page, not one per id.
        attempts = tx.attempts.find_many(
            pipeline_id, [o for o in page if "_Attempt=" in o and o not in components]
        )
        instances = tx.instances.find_many(
            pipeline_id,
            {a.instance_id for a in attempts.values()}
            | {o for o in page if o not in components and o not in attempts},
        )
        deps = dependencies(tx, pipeline_id, instances)
        shown: dict[str, list[Field]] = {}  # a component's own fields as its instances show them
        for oid in page:
            if oid in components:
                objects.append(component_object(components[oid]))
                continue
            attempt = attempts.get(oid)
            inst = instances.get(attempt.instance_id if attempt else oid)
            if inst is None:
                continue
            fields = attempt_runtime(attempt, inst) if attempt else instance_runtime(inst)
            if evaluate_expressions:
                active = _active(service, tx, pipeline, inst.definition_version)
                fields = _evaluated(active, inst.component_id, instance_scope(active, inst, attempt)) + fields
            else:
                fields = component_fields(inst.component_id, components, shown) + fields
            if not attempt:
                fields += waiting_on(inst, deps)
            objects.append({"id": oid, "name": oid, "fields": fields})
    more = start + OBJECTS_PAGE < len(object_ids)
    out: dict[str, Any] = {"pipelineObjects": objects, "hasMoreResults": more}
    if more:
        out["marker"] = str(start + OBJECTS_PAGE)
    return out


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


def dependencies(tx: Transaction, pipeline_id: str, instances: Mapping[str, Instance]) -> dict[str, Instance]:
    """`instances` and the instances those waiting on dependencies wait on (for waiting_on)."""
    waiting = {
        d
        for i in instances.values()
        if i.status is Status.WAITING_ON_DEPENDENCIES
        for d in (*i.depends_on, *i.preconditions)
    }
    deps = tx.instances.find_many(pipeline_id, waiting - instances.keys()) if waiting else {}
    deps.update(instances)
    return deps


def waiting_on(inst: Instance, deps: Mapping[str, Instance]) -> list[Field]:
    """`@waitingOn` of an instance waiting on dependencies: those not FINISHED yet."""
    if inst.status is not Status.WAITING_ON_DEPENDENCIES:
        return []
    return [
        _r("@waitingOn", d)
        for d in (*inst.depends_on, *inst.preconditions)
        if d not in deps or deps[d].status is not Status.FINISHED
    ]


# --- QueryObjects ---------------------------------------------------------------------------------


def query_objects(
    service: PipelineService,
    pipeline_id: str,
    sphere: str,
    *,
    selectors: Sequence[Mapping[str, Any]],
    limit: int,
    marker: str | None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Ids of the sphere's objects matching every selector, in id order.

    Selectors on status, scheduled and actual start and the parent component (of instances)
    are conditions of the store's query, so a page holds up to `limit` matching ids. The others
    are matched on the page's objects after it is cut, as the service did: a page may then hold
    fewer ids than `limit` (even none) and still have more.
    """
    sphere = sphere.upper()
    if sphere not in SPHERES:
        raise InvalidRequest(f"sphere must be one of {', '.join(SPHERES)}; found {sphere!r}")
    checked = parse_selectors(selectors)
    where, rest = to_store(sphere, checked)
    limit = max(1, min(int(limit or 100), 500))
    after = marker or None
    with service.store.transaction(readonly=True) as tx:
        owned_pipeline(service, tx, pipeline_id, owner)
        scanned: list[str]
        if sphere == "COMPONENT":
            comps = [c for c in tx.components.list(pipeline_id) if after is None or c.id > after][: limit + 1]
            scanned = [c.id for c in comps]
            fields = {c.id: [*component_object(c)["fields"], _s("name", c.name)] for c in comps}
        elif sphere == "INSTANCE" and not rest:
            scanned = tx.instances.page_ids(pipeline_id, after=after, limit=limit + 1, where=where)
            fields = {}
        elif sphere == "INSTANCE":
            insts = tx.instances.page(pipeline_id, after=after, limit=limit + 1, where=where)
            scanned = [i.id for i in insts]
            fields = {i.id: [*instance_runtime(i), _s("name", i.id)] for i in insts[:limit]}
        else:
            attempts = tx.attempts.page(pipeline_id, after=after, limit=limit + 1, where=where)
            scanned = [a.id for a in attempts]
            parents = (
                tx.instances.find_many(pipeline_id, {a.instance_id for a in attempts[:limit]}) if rest else {}
            )
            fields = {
                a.id: [*attempt_runtime(a, parents.get(a.instance_id)), _s("name", a.id)]
                for a in attempts[:limit]
                if rest
            }
    more = len(scanned) > limit
    scanned = scanned[:limit]
    out: dict[str, Any] = {
        "ids": [oid for oid in scanned if not rest or matches(fields[oid], rest)],
        "hasMoreResults": more,
    }
    if more:
        out["marker"] = scanned[-1]
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
