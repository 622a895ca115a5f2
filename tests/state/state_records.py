"""Record builders for the state store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tailrace.state import Instance, Pipeline, PipelineState, Status

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def pipeline(pid="df-00000000000000000001", **kw) -> Pipeline:
    values = dict(
        id=pid,
        name="p",
        unique_id=f"u-{pid}",
        owner="me",
        created_at=T0,
        updated_at=T0,
        state=PipelineState.SCHEDULED,
    )
    values.update(kw)
    return Pipeline(**values)


def instance(pid, iid, *, component="A", start=T0, status=Status.WAITING_ON_DEPENDENCIES, **kw) -> Instance:
    values = dict(
        pipeline_id=pid,
        id=iid,
        component_id=component,
        category="ACTIVITY",
        type="ShellCommandActivity",
        window=0,
        scheduled_start=start,
        scheduled_end=start + timedelta(days=1),
        run_at=start,
        status=status,
        definition_version=1,
        created_at=T0,
        updated_at=T0,
    )
    values.update(kw)
    return Instance(**values)
