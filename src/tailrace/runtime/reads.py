"""What the runtime tells readers about a pipeline, as records: the pipeline (or why it is not
there), its health, the active definition of a version, an instance's expression scope and its
component's fields evaluated there, and EvaluateExpression's value.

The API's wire shapes (DescribeObjects, QueryObjects, PollForTask's taskObject, ...) are built
from these in tailrace.api.aws; nothing here knows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from tailrace.errors import TailraceError
from tailrace.expressions import Scope, render
from tailrace.runtime.activation import ActiveDefinition, DefinitionCache, planned_from_spec
from tailrace.runtime.errors import InvalidRequest, PipelineDeleted
from tailrace.state import (
    Attempt,
    HealthStatus,
    Instance,
    Pipeline,
    PipelineNotFound,
    Status,
    Transaction,
)

ERROR_STATES = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT})
"""An activity instance that ended in one of these makes its pipeline's health ERROR."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Health:
    """A pipeline's health: that of its activity instance that ended last (None before any)."""

    status: HealthStatus | None
    instance_id: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EvaluatedField:
    """One value of a component field with its #{...} evaluated; `ref` when it names an object."""

    key: str
    value: str
    ref: bool = False


def get_pipeline(tx: Transaction, pipeline_id: str, *, lock: bool = False) -> Pipeline:
    """The pipeline. :raises PipelineNotFound: / PipelineDeleted (it existed)."""
    found = tx.pipelines.lock(pipeline_id) if lock else tx.pipelines.find(pipeline_id)
    return found or _missing(tx, pipeline_id)


def _missing(tx: Transaction, pipeline_id: str) -> NoReturn:
    raise (
        PipelineDeleted(pipeline_id)
        if tx.pipelines.was_deleted(pipeline_id)
        else PipelineNotFound(pipeline_id)
    )


def owned_pipeline(tx: Transaction, pipeline_id: str, owner: str | None) -> Pipeline:
    """The pipeline, if `owner` (None: anyone) may see it; another owner's looks missing."""
    pipeline = get_pipeline(tx, pipeline_id)
    if owner is not None and (pipeline.owner or "") != owner:
        raise PipelineNotFound(pipeline_id)
    return pipeline


def pipeline_and_health(tx: Transaction, pipeline_id: str) -> tuple[Pipeline, Health]:
    """get_pipeline and pipeline_health in one read. :raises PipelineNotFound: / PipelineDeleted."""
    found = tx.pipelines.find_with_latest_ended(pipeline_id, category="ACTIVITY")
    if found is None:
        _missing(tx, pipeline_id)
    return found[0], _health(found[1])


def pipeline_health(tx: Transaction, pipeline_id: str) -> Health:
    return _health(tx.instances.latest_ended(pipeline_id, category="ACTIVITY"))


def _health(last: tuple[str, Status, datetime] | None) -> Health:
    if last is None:
        return Health(status=None)
    instance_id, ended_status, ended_at = last
    status = HealthStatus.ERROR if ended_status in ERROR_STATES else HealthStatus.HEALTHY
    return Health(status=status, instance_id=instance_id, updated_at=ended_at)


def active_definition(
    definitions: DefinitionCache, tx: Transaction, pipeline: Pipeline, version: int
) -> ActiveDefinition:
    """The pipeline's definition `version` as activated (cached in `definitions`)."""

    def load(v: int) -> Mapping[str, Any]:
        found = tx.definitions.find(pipeline.id, v)
        if found is None:
            raise TailraceError(f"definition version {v} of {pipeline.id} is missing")
        return found.wire

    return definitions.get(pipeline, version, load)


def instance_scope(active: ActiveDefinition, inst: Instance, attempt: Attempt | None = None) -> Scope:
    """The scope #{...} is evaluated in for the instance (or one of its attempts)."""
    extra: dict[str, Any] = {"@status": inst.status.value, "@attemptCount": inst.attempt_count}
    if inst.started_at:
        extra["@actualStartTime"] = inst.started_at
    if inst.ended_at:
        extra["@actualEndTime"] = inst.ended_at
    if attempt is not None:
        extra["@status"] = attempt.status.value
    return active.scopes.instance_scope(planned_from_spec(inst.spec), extra=extra)


def evaluated_fields(active: ActiveDefinition, component_id: str, scope: Scope) -> list[EvaluatedField]:
    """The component's fields with #{...} evaluated in `scope` (left as written if they fail),
    without the references an instance has to instances of its own."""
    obj = active.resolved.get(component_id)
    if obj is None:
        return []
    out: list[EvaluatedField] = []
    for key, value in obj.fields.items():
        if key in ("input", "output", "precondition", "parent"):
            continue  # the instance's own refs point at instances
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if hasattr(item, "id"):
                out.append(EvaluatedField(key=key, value=item.id, ref=True))
                continue
            text = item
            if "#{" in item:
                try:
                    rendered = render(item, scope)
                    text = rendered if isinstance(rendered, str) else ",".join(rendered)
                except TailraceError:
                    pass
            out.append(EvaluatedField(key=key, value=text))
    return out


def evaluate_expression(
    definitions: DefinitionCache, tx: Transaction, pipeline_id: str, object_id: str, expression: str
) -> str:
    """EvaluateExpression: `expression` in the scope of a component or an instance (or attempt)
    of the active definition. :raises InvalidRequest: naming what is missing or wrong."""
    pipeline = get_pipeline(tx, pipeline_id)
    version = pipeline.active_version or pipeline.latest_version
    if version is None:
        raise InvalidRequest(f"pipeline {pipeline_id} has no definition")
    active = active_definition(definitions, tx, pipeline, version)
    attempt = tx.attempts.find(pipeline_id, object_id) if "_Attempt=" in object_id else None
    inst = tx.instances.find(pipeline_id, attempt.instance_id if attempt else object_id)
    if inst is not None:
        active = active_definition(definitions, tx, pipeline, inst.definition_version)
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
