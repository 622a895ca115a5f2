"""Records from the state store as the REST API shows them. Times are UTC, written the way the
service wrote them (`YYYY-MM-DDTHH:MM:SS`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tailrace.clock import format_dp
from tailrace.events.model import ActionFailed, ActionFired, StatusChanged, encode
from tailrace.runtime.reads import Health
from tailrace.state import Attempt, Instance, Pipeline, StoredEvent


def _dp(value: datetime | None) -> str | None:
    return format_dp(value) if value is not None else None


def pipeline_json(p: Pipeline, health: Health, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The pipeline; `health` as DescribePipelines' @healthStatus (tailrace.runtime.reads)."""
    out: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "uniqueId": p.unique_id,
        "description": p.description,
        "owner": p.owner,
        "state": str(p.state),
        "healthStatus": health.status.value if health.status else None,
        "createdAt": _dp(p.created_at),
        "activatedAt": _dp(p.activated_at),
        "latestRunTime": _dp(p.latest_run_at),
        "nextRunTime": _dp(p.next_window_at) if str(p.state) == "SCHEDULED" else None,
        "finishedAt": _dp(p.finished_at),
        "latestVersion": p.latest_version,
        "activeVersion": p.active_version,
        "tags": dict(p.tags),
    }
    if counts is not None:
        out["instanceCounts"] = dict(counts)
    return out


def instance_cell(i: Instance) -> dict[str, Any]:
    return {
        "id": i.id,
        "componentId": i.component_id,
        "status": str(i.status),
        "attemptCount": i.attempt_count,
        "headAttempt": i.head_attempt,
        "actualStartTime": _dp(i.started_at),
        "actualEndTime": _dp(i.ended_at),
        "errorMessage": i.error_message,
    }


def instance_json(i: Instance) -> dict[str, Any]:
    return {
        **instance_cell(i),
        "type": i.type,
        "category": i.category,
        "scheduledStartTime": _dp(i.scheduled_start),
        "scheduledEndTime": _dp(i.scheduled_end),
        "workerGroup": i.worker_group,
        "resourceId": i.resource_id,
        "dependsOn": list(i.depends_on),
        "preconditions": list(i.preconditions),
        "triesLeft": i.tries_left,
        "cascadeFailedOn": i.cascade_failed_on,
    }


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "instanceId": a.instance_id,
        "number": a.number,
        "status": str(a.status),
        "hostname": a.hostname,
        "runnerId": a.runner_id,
        "startedAt": _dp(a.started_at),
        "endedAt": _dp(a.ended_at),
        "errorId": a.error_id,
        "errorMessage": a.error_message,
        "errorStackTrace": a.error_stack_trace,
        "hasLog": a.log_location is not None,
        "progress": dict(a.progress),
    }


def event_json(record: StoredEvent) -> dict[str, Any]:
    """An outbox event as the REST events listing shows it: its type name and payload fields."""
    e = record.event
    type_name, _, payload = encode(e)
    if isinstance(e, StatusChanged):
        object_id: str | None = e.object_id
    elif isinstance(e, ActionFired | ActionFailed):
        object_id = e.action_id
    else:
        object_id = e.pipeline_id
    return {
        "id": record.id,
        "type": type_name,
        "at": _dp(e.at),
        "pipelineId": e.pipeline_id,
        "objectId": object_id,
        "payload": _plain(payload),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return format_dp(value)
    return value


def ref_targets(fields: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(field, referenced id) for every reference among a component's wire-form fields."""
    for key, value in fields.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, Mapping) and "ref" in item:
                yield key, str(item["ref"])
