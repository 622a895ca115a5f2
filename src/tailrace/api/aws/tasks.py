"""PollForTask in the API's shape: the claimed task as a taskObject, the attempt with its
component's fields evaluated for this instance, plus the instances it reads and writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tailrace.api.aws.objects import attempt_runtime, evaluated, instance_runtime
from tailrace.runtime.reads import active_definition, evaluated_fields, get_pipeline, instance_scope

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService
    from tailrace.runtime.tasks import Task


def poll_for_task(
    service: PipelineService,
    worker_group: str,
    *,
    hostname: str | None = None,
    runner_id: str | None = None,
    owner: str | None = None,
) -> dict[str, Any] | None:
    """PollForTask: the next task of the worker group as a taskObject, or None. With `owner`
    (the API caller's), only that owner's pipelines hand out tasks."""
    task = service.poll_for_task(worker_group, hostname=hostname, runner_id=runner_id, owner=owner)
    return task_object(service, task) if task is not None else None


def task_object(service: PipelineService, task: Task) -> dict[str, Any]:
    """PollForTask's taskObject: the attempt with its component's fields evaluated for this
    instance, plus the instances it reads and writes."""
    inst = task.instance
    with service.store.transaction(readonly=True) as tx:
        pipeline = get_pipeline(tx, task.pipeline_id)
        attempt = tx.attempts.find(task.pipeline_id, task.attempt_id)
        active = active_definition(service.definitions, tx, pipeline, inst.definition_version)
        related = tx.instances.find_many(
            task.pipeline_id, (*(inst.spec.get("inputs") or ()), *(inst.spec.get("outputs") or ()))
        )
    objects: dict[str, Any] = {}
    scope = instance_scope(active, inst, attempt)
    fields = evaluated(evaluated_fields(active, inst.component_id, scope))
    fields += attempt_runtime(attempt, inst) if attempt else []
    fields += [f for f in instance_runtime(inst) if f["key"] in ("input", "output", "@resource")]
    objects[task.attempt_id] = {"id": task.attempt_id, "name": task.attempt_id, "fields": fields}
    for rid, other in related.items():
        rscope = instance_scope(active, other)
        objects[rid] = {
            "id": rid,
            "name": rid,
            "fields": evaluated(evaluated_fields(active, other.component_id, rscope))
            + instance_runtime(other),
        }
    return {
        "taskId": task.task_id,
        "pipelineId": task.pipeline_id,
        "attemptId": task.attempt_id,
        "objects": objects,
    }
