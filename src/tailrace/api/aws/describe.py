"""The Data Pipeline read operations in the API's shapes: DescribePipelines, ListPipelines,
DescribeObjects and QueryObjects, read straight from the state store (objects.py builds the
objects; selectors.py checks QueryObjects' selectors and turns what it can into store conditions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tailrace.api.aws.objects import (
    Field,
    attempt_runtime,
    component_fields,
    component_object,
    evaluated,
    instance_runtime,
    pipeline_fields,
    text_field,
    waiting_on,
)
from tailrace.api.aws.selectors import matches, parse_selectors, to_store
from tailrace.definition import to_wire
from tailrace.errors import TailraceError
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.reads import (
    active_definition,
    evaluated_fields,
    instance_scope,
    owned_pipeline,
    pipeline_and_health,
)
from tailrace.state import Component, Instance, Pipeline, StateStore, Status, Transaction

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService

OBJECTS_PAGE = 100
SPHERES = ("COMPONENT", "INSTANCE", "ATTEMPT")


def describe_pipelines(
    service: PipelineService, pipeline_ids: Sequence[str], *, store: StateStore | None = None
) -> list[dict[str, Any]]:
    """DescribePipelines' pipelineDescriptionList, read from `store` (default: the service's).
    :raises PipelineNotFound: / PipelineDeleted."""
    out = []
    with (store or service.store).transaction(readonly=True) as tx:
        for pid in pipeline_ids:
            p, health = pipeline_and_health(tx, pid)  # raises PipelineNotFound / PipelineDeleted
            out.append(
                {
                    "pipelineId": p.id,
                    "name": p.name,
                    "fields": pipeline_fields(p, health, service.config.lookahead),
                    "description": p.description,
                    "tags": [{"key": k, "value": v} for k, v in p.tags.items()],
                }
            )
    return out


def list_pipelines(
    service: PipelineService, *, marker: str | None = None, owner: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """ListPipelines: a page of `owner`'s pipelines (None: everyone's) after `marker`."""
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


def describe_objects(
    service: PipelineService,
    pipeline_id: str,
    object_ids: Sequence[str],
    *,
    evaluate_expressions: bool = False,
    marker: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """DescribeObjects. With `owner`, another owner's pipeline is reported as missing."""
    start = int(marker) if marker and marker.isdigit() else 0
    page = list(object_ids)[start : start + OBJECTS_PAGE]
    objects: list[dict[str, Any]] = []
    with service.store.transaction(readonly=True) as tx:
        pipeline = owned_pipeline(tx, pipeline_id, owner)
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
                objects.append(_component(service, tx, pipeline, components[oid], evaluate_expressions))
                continue
            attempt = attempts.get(oid)
            inst = instances.get(attempt.instance_id if attempt else oid)
            if inst is None:
                continue
            fields = attempt_runtime(attempt, inst) if attempt else instance_runtime(inst)
            if evaluate_expressions:
                active = active_definition(service.definitions, tx, pipeline, inst.definition_version)
                scope = instance_scope(active, inst, attempt)
                inherited = evaluated(evaluated_fields(active, inst.component_id, scope))
            else:
                inherited = component_fields(inst.component_id, components, shown)
            # The runtime part already carries `type` and `workerGroup`: each key once.
            own = {f["key"] for f in fields}
            fields = [f for f in inherited if f["key"] not in own] + fields
            if not attempt:
                fields += waiting_on(inst, deps)
            objects.append({"id": oid, "name": oid, "fields": fields})
    more = start + OBJECTS_PAGE < len(object_ids)
    out: dict[str, Any] = {"pipelineObjects": objects, "hasMoreResults": more}
    if more:
        out["marker"] = str(start + OBJECTS_PAGE)
    return out


def _component(
    service: PipelineService, tx: Transaction, pipeline: Pipeline, c: Component, evaluate: bool
) -> dict[str, Any]:
    """A component as DescribeObjects shows it: its own fields as written (with `parent`); with
    evaluateExpressions, its resolved fields instead (inherited ones added, `parent` dropped)
    with their expressions evaluated in the component's scope. Runtime fields (`@...`) follow."""
    plain = component_object(c)
    try:
        active = active_definition(service.definitions, tx, pipeline, c.version)
    except TailraceError:
        return plain
    runtime = [f for f in plain["fields"] if f["key"].startswith("@")]
    if not evaluate:
        written = next((o for o in active.definition.objects if o.id == c.id), None)
        if written is None:
            return plain
        own = to_wire(replace(active.definition, objects=(written,), parameters=(), values={}))
        return {**plain, "fields": own["pipelineObjects"][0]["fields"] + runtime}
    if active.resolved.get(c.id) is None:
        return plain
    fields = evaluated(evaluated_fields(active, c.id, active.scopes.component_scope(c.id)))
    shown = {f["key"] for f in fields} | {"parent"}
    fields += [f for f in plain["fields"] if f["key"] not in shown and not f["key"].startswith("@")]
    return {**plain, "fields": fields + runtime}


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


# --- QueryObjects ---------------------------------------------------------------------------------


def query_objects(
    service: PipelineService,
    pipeline_id: str,
    sphere: str,
    *,
    selectors: Sequence[Mapping[str, Any]] = (),
    limit: int = 100,
    marker: str | None = None,
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
        owned_pipeline(tx, pipeline_id, owner)
        scanned: list[str]
        if sphere == "COMPONENT":
            comps = [c for c in tx.components.list(pipeline_id) if after is None or c.id > after][: limit + 1]
            scanned = [c.id for c in comps]
            fields = {c.id: [*component_object(c)["fields"], text_field("name", c.name)] for c in comps}
        elif sphere == "INSTANCE" and not rest:
            scanned = tx.instances.page_ids(pipeline_id, after=after, limit=limit + 1, where=where)
            fields = {}
        elif sphere == "INSTANCE":
            insts = tx.instances.page(pipeline_id, after=after, limit=limit + 1, where=where)
            scanned = [i.id for i in insts]
            fields = {i.id: [*instance_runtime(i), text_field("name", i.id)] for i in insts[:limit]}
        else:
            attempts = tx.attempts.page(pipeline_id, after=after, limit=limit + 1, where=where)
            scanned = [a.id for a in attempts]
            parents = (
                tx.instances.find_many(pipeline_id, {a.instance_id for a in attempts[:limit]}) if rest else {}
            )
            fields = {
                a.id: [*attempt_runtime(a, parents.get(a.instance_id)), text_field("name", a.id)]
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
