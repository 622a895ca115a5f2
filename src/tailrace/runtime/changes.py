"""What a definition change may do to an active pipeline, and the components a definition
gives it.

The service's rules for editing an active pipeline: no object may be removed; a Schedule keeps
its period and its start; existing objects keep their reference fields; a new object may not
name an existing object as its output. Anything else (commands, scripts, new objects...) is
accepted as the latest version and runs after the next activation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from typing import Any

from tailrace.definition import (
    PipelineDefinition,
    PipelineObject,
    Problem,
    Ref,
    ValidationReport,
    resolve,
    values_of,
)
from tailrace.definition.problems import error
from tailrace.state import Component, Status

SCHEDULE_START_FIELDS = ("startDateTime", "startAt")


def _refs(obj: PipelineObject) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for key, ref in obj.refs():
        out.setdefault(key, []).append(ref.id)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def active_change_problems(active: PipelineDefinition, new: PipelineDefinition) -> list[Problem]:
    problems: list[Problem] = []
    old_by_id, new_by_id = active.by_id, new.by_id
    hint = "deactivate the pipeline, or create a new one, to make this change"
    for oid in old_by_id:
        if oid not in new_by_id:
            problems.append(error(oid, None, f"cannot remove object '{oid}' from an active pipeline; {hint}"))
    for oid, obj in new_by_id.items():
        before = old_by_id.get(oid)
        if before is None:
            for target in (r.id for k, r in obj.refs() if k == "output"):
                if target in old_by_id:
                    problems.append(
                        error(
                            oid,
                            "output",
                            f"a new object cannot name the existing object '{target}' as its output on an "
                            f"active pipeline; {hint}",
                        )
                    )
            continue
        if obj.type == "Schedule" or before.type == "Schedule":
            if before.get("period") != obj.get("period"):
                problems.append(
                    error(oid, "period", f"cannot change the period of an active pipeline's schedule; {hint}")
                )
            for field in SCHEDULE_START_FIELDS:
                if before.get(field) != obj.get(field):
                    problems.append(
                        error(oid, field, f"cannot change the start of an active pipeline's schedule; {hint}")
                    )
        old_refs, new_refs = _refs(before), _refs(obj)
        for key in sorted(set(old_refs) | set(new_refs)):
            if old_refs.get(key) != new_refs.get(key):
                problems.append(
                    error(
                        oid, key, f"cannot change the reference field '{key}' of an existing object; {hint}"
                    )
                )
    return problems


def add_problems(report: ValidationReport, problems: Iterable[Problem]) -> ValidationReport:
    extra = tuple(problems)
    if not extra:
        return report
    return dataclasses.replace(report, problems=report.problems + extra)


def _wire_value(value: Any) -> Any:
    items = [{"ref": v.id} if isinstance(v, Ref) else v for v in values_of(value)]
    return items[0] if len(items) == 1 and not isinstance(value, tuple) else items


def components_of(
    pipeline_id: str,
    definition: PipelineDefinition,
    version: int,
    *,
    status: Status = Status.PENDING,
    paused: Collection[str] = (),
) -> list[Component]:
    """One component per object of the definition, with its inherited fields."""
    resolved = resolve(definition)
    out = []
    for obj in resolved.objects.values():
        out.append(
            Component(
                pipeline_id=pipeline_id,
                id=obj.id,
                name=obj.name,
                type=obj.type,
                category=obj.category.name if obj.category is not None else None,
                status=Status.PAUSED if obj.id in paused else status,
                version=version,
                fields={key: _wire_value(value) for key, value in obj.fields.items()},
            )
        )
    return out
