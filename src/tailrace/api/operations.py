"""One thin handler per AWS Data Pipeline operation.

Each takes the checked input (member names as in the model, timestamps as datetimes) and the
caller, enforces ownership, and calls the pipeline service (runtime/service.py) for what changes
state, or the read operations of api/aws/ for the wire shapes; shapes.py writes the output.

Ownership: every pipeline belongs to the owner of the key that created it. Another owner's
pipeline is reported exactly like a missing one, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore import xform_name

from tailrace.api import shapes
from tailrace.api.auth import Caller
from tailrace.api.aws import describe, tasks
from tailrace.api.aws.runs import STATUS_ALIASES
from tailrace.definition import from_wire
from tailrace.expressions import time_limit
from tailrace.runtime.errors import InvalidRequest, PipelineDeleted
from tailrace.runtime.service import PipelineService
from tailrace.state import Pipeline, PipelineNotFound, StateStore, TaskNotFound

MAX_EXPRESSION = 64 * 1024
"""Characters of an EvaluateExpression expression. The model allows 20 MiB, but a field of a
definition holds at most 10,240 bytes, so nothing longer is ever evaluated for real."""
EVALUATION_SECONDS = 5.0
"""Wall time one EvaluateExpression may take before it is stopped with an error."""

LIST_PAGE = 50
"""ListPipelines page size (the service's, as moto also shows)."""
MAX_DESCRIBE_PIPELINES = 25


class TaskNotOwned(TaskNotFound):
    """Another owner's task, reported exactly like a missing one so that ids cannot be probed."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.message = f"task {task_id[:16]!r}... does not exist"
        self.args = (self.message,)


class Operations:
    def __init__(self, *, service: PipelineService, store: StateStore, poll_wait: float = 90.0) -> None:
        self.service = service
        self.store = store
        self.long_poll = tasks.LongPoll(service, wait=poll_wait)
        self._table: dict[str, Callable[[Caller, dict[str, Any]], Mapping[str, Any] | None]] = {}
        for name in shapes.operation_names():
            handler = getattr(self, xform_name(name), None)
            if handler is None:
                raise AssertionError(f"no handler for operation {name}")
            self._table[name] = handler

    def __call__(self, operation: str, caller: Caller, params: dict[str, Any]) -> Mapping[str, Any] | None:
        return self._table[operation](caller, params)

    # --- ownership ---------------------------------------------------------------------------

    def _pipeline(self, caller: Caller, pipeline_id: str) -> Pipeline:
        with self.store.transaction(readonly=True) as tx:
            found = tx.pipelines.find(pipeline_id)
            deleted = found is None and tx.pipelines.was_deleted(pipeline_id)
        if deleted:
            raise PipelineDeleted(pipeline_id)
        if found is None or not caller.owns(found.owner):
            raise PipelineNotFound(pipeline_id)
        return found

    def _own_task(self, caller: Caller, task_id: str) -> None:
        if caller.owner is None:
            return
        with self.store.transaction(readonly=True) as tx:
            attempt = tx.attempts.by_task(task_id)
            pipeline = tx.pipelines.find(attempt.pipeline_id) if attempt else None
        if pipeline is None or not caller.owns(pipeline.owner):
            raise TaskNotOwned(task_id)

    # --- pipelines ---------------------------------------------------------------------------

    def create_pipeline(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        pid = self.service.create_pipeline(
            p["name"],
            p["uniqueId"],
            owner=caller.owner_for_new,
            description=p.get("description"),
            tags=tags_from_wire(p.get("tags", [])),
        )
        return {"pipelineId": pid}

    def delete_pipeline(self, caller: Caller, p: dict[str, Any]) -> None:
        # The service model lists no PipelineDeletedException for DeletePipeline: a pipeline
        # already deleted is answered as not found.
        try:
            self._pipeline(caller, p["pipelineId"])
            self.service.delete_pipeline(p["pipelineId"])
        except PipelineDeleted as exc:
            raise PipelineNotFound(p["pipelineId"]) from exc

    def describe_pipelines(
        self, caller: Caller, p: dict[str, Any], *, store: StateStore | None = None
    ) -> dict[str, Any]:
        """`store`: another view of the same database (the event loop's own connection)."""
        ids: Sequence[str] = list(dict.fromkeys(p["pipelineIds"]))
        if len(ids) > MAX_DESCRIBE_PIPELINES:
            raise InvalidRequest(f"pipelineIds takes at most {MAX_DESCRIBE_PIPELINES} ids, got {len(ids)}")
        # raises for a missing or deleted id
        found = describe.describe_pipelines(self.service, ids, store=store)
        if caller.owner is not None:
            # The owner is among the fields the service returns; checking it here saves a read
            # per call on the API's busiest operation. A description without it is not the caller's.
            for desc in found:
                owner = next(
                    (f.get("stringValue") for f in desc["fields"] if f["key"] == "pipelineCreator"), None
                )
                if owner != caller.owner:
                    raise PipelineNotFound(desc["pipelineId"])
        return {"pipelineDescriptionList": found}

    def list_pipelines(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return describe.list_pipelines(
            self.service, marker=p.get("marker"), owner=caller.owner, limit=LIST_PAGE
        )

    def add_tags(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(caller, p["pipelineId"])
        self.service.add_tags(p["pipelineId"], tags_from_wire(p["tags"]))
        return {}

    def remove_tags(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(caller, p["pipelineId"])
        self.service.remove_tags(p["pipelineId"], p["tagKeys"])
        return {}

    # --- definitions and lifecycle -------------------------------------------------------------

    def _definition(self, caller: Caller, p: dict[str, Any], *, validate_only: bool) -> dict[str, Any]:
        self._pipeline(caller, p["pipelineId"])
        wire: dict[str, Any] = {
            k: p[k] for k in ("pipelineObjects", "parameterObjects", "parameterValues") if k in p
        }
        report = self.service.put_definition(
            p["pipelineId"], from_wire(wire, source="request"), validate_only=validate_only
        )
        return report.to_aws()

    def put_pipeline_definition(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._definition(caller, p, validate_only=False)

    def validate_pipeline_definition(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._definition(caller, p, validate_only=True)

    def get_pipeline_definition(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(caller, p["pipelineId"])
        return self.service.get_definition(p["pipelineId"], p.get("version") or "latest")

    def activate_pipeline(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(caller, p["pipelineId"])
        values = values_from_wire(p["parameterValues"]) if "parameterValues" in p else None
        self.service.activate(
            p["pipelineId"], start_timestamp=p.get("startTimestamp"), parameter_values=values
        )
        return {}

    def deactivate_pipeline(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._pipeline(caller, p["pipelineId"])
        self.service.deactivate(p["pipelineId"], cancel_active=p.get("cancelActive", True))
        return {}

    # --- objects -----------------------------------------------------------------------------

    # The two bulk reads check ownership in the service's own read (one transaction a page).

    def describe_objects(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        with time_limit(EVALUATION_SECONDS * 5):  # a page of objects, every field evaluated
            return describe.describe_objects(
                self.service,
                p["pipelineId"],
                list(dict.fromkeys(p["objectIds"])),
                evaluate_expressions=p.get("evaluateExpressions", False),
                marker=p.get("marker"),
                owner=caller.owner,
            )

    def query_objects(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        limit = p.get("limit", 100)
        if limit < 1:
            raise InvalidRequest(f"limit must be at least 1, got {limit}")
        selectors = [_selector(s, i) for i, s in enumerate(p.get("query", {}).get("selectors", []))]
        return describe.query_objects(
            self.service,
            p["pipelineId"],
            p["sphere"],
            selectors=selectors,
            limit=limit,
            marker=p.get("marker"),
            owner=caller.owner,
        )

    def set_status(self, caller: Caller, p: dict[str, Any]) -> None:
        self._pipeline(caller, p["pipelineId"])
        self.service.set_status(p["pipelineId"], list(dict.fromkeys(p["objectIds"])), p["status"])

    def evaluate_expression(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        expression = p["expression"]
        if len(expression) > MAX_EXPRESSION:
            raise InvalidRequest(
                f"1 validation error detected: value at 'expression' failed to satisfy constraint: member "
                f"must have length less than or equal to {MAX_EXPRESSION} (got {len(expression)} characters)"
            )
        self._pipeline(caller, p["pipelineId"])
        with time_limit(EVALUATION_SECONDS):
            text = self.service.evaluate_expression(p["pipelineId"], p["objectId"], expression)
        return {"evaluatedExpression": text}

    # --- task runners --------------------------------------------------------------------------

    def poll_for_task(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        # Worker groups are shared names; the owner filter keeps other owners' tasks out of reach.
        task = self.long_poll.poll(p["workerGroup"], hostname=p.get("hostname"), owner=caller.owner)
        return {"taskObject": task} if task else {}

    def report_task_progress(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._own_task(caller, p["taskId"])
        fields = {f["key"]: f.get("stringValue", f.get("refValue")) for f in p.get("fields", [])}
        return {"canceled": self.service.report_task_progress(p["taskId"], fields)}

    def report_task_runner_heartbeat(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        terminate = self.service.report_task_runner_heartbeat(
            p["taskrunnerId"], worker_group=p.get("workerGroup"), hostname=p.get("hostname")
        )
        return {"terminate": terminate}

    def set_task_status(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        self._own_task(caller, p["taskId"])
        error_id = p.get("errorId")
        if error_id and error_id.startswith("Service_"):
            raise InvalidRequest("errorId must not start with 'Service_' (reserved for the service)")
        self.service.set_task_status(
            p["taskId"],
            p["taskStatus"],
            error_id=error_id,
            error_message=p.get("errorMessage"),
            error_stack_trace=p.get("errorStackTrace"),
        )
        return {}


def values_from_wire(items: Sequence[Mapping[str, str]]) -> dict[str, str | list[str]]:
    """parameterValues ([{id, stringValue}], a repeated id for an array) as {id: value or [values]}."""
    out: dict[str, str | list[str]] = {}
    for item in items:
        key, value = item["id"], item["stringValue"]
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def tags_from_wire(items: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """tags ([{key, value}]) as {key: value}; a repeated key keeps its last value."""
    return {t["key"]: t.get("value", "") for t in items}


def _selector(s: Mapping[str, Any], index: int) -> dict[str, Any]:
    where = f"query.selectors[{index}]"
    field = s.get("fieldName")
    op = s.get("operator") or {}
    kind, values = op.get("type"), list(op.get("values") or [])
    if not field:
        raise InvalidRequest(f"{where}.fieldName is required")
    if not kind:
        raise InvalidRequest(f"{where}.operator.type is required (EQ, REF_EQ, LE, GE or BETWEEN)")
    need = 2 if kind == "BETWEEN" else 1
    if len(values) < need or (kind in ("LE", "GE", "BETWEEN") and len(values) != need):
        raise InvalidRequest(
            f"{where}: operator {kind} takes {need} value{'s' if need > 1 else ''}, got {len(values)}"
        )
    if field == "@status":
        values = [STATUS_ALIASES.get(v.upper(), v.upper()) for v in values]
    return {"fieldName": field, "operator": {"type": kind, "values": values}}
