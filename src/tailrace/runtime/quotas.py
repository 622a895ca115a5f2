"""Per-owner limits checked when a pipeline is activated ([limits] in tailrace.toml): active
pipelines per owner, and instances one activation creates at once (the backfill), reported
with the numbers the activation preview shows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tailrace.definition import to_wire, validate
from tailrace.errors import TailraceError
from tailrace.limits import Limits
from tailrace.runtime.activation import ActiveDefinition, build_active
from tailrace.runtime.errors import LimitExceeded
from tailrace.state import Pipeline, PipelineState, Transaction

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService


def check_active_pipelines(tx: Transaction, pipeline: Pipeline, limits: Limits) -> None:
    """Refuse to activate one more pipeline of an owner at [limits] active_pipelines."""
    most = limits.active_pipelines
    active = tx.pipelines.count_in_state(
        pipeline.owner, {PipelineState.SCHEDULED, PipelineState.DEACTIVATING}
    )
    if active >= most:
        raise LimitExceeded(
            f"cannot activate {pipeline.id}: its owner has {active} active pipelines, the most this "
            f"server allows per owner ([limits] active_pipelines = {most}); deactivate one first"
        )


def precheck_backfill(
    service: PipelineService,
    pipeline_id: str,
    start: datetime | None,
    parameter_values: Mapping[str, str | Sequence[str]] | None,
    now: datetime,
) -> None:
    """Refuse the activation when its backfill passes the limit (read-only; problems of
    another kind are left to the activation itself to report)."""
    with service.store.transaction(readonly=True) as tx:
        pipeline = service._get(tx, pipeline_id)
        if pipeline.latest_version is None or pipeline.state is PipelineState.DEACTIVATING:
            return
        definition = service._definition(tx, pipeline, pipeline.latest_version)
    if parameter_values is not None:
        values = {k: (v if isinstance(v, str) else tuple(v)) for k, v in parameter_values.items()}
        definition = dataclasses.replace(definition, values=values)
    if validate(definition, definition.values, limits=service.limits).errored:
        return
    try:
        active = build_active(
            pipeline_id=pipeline_id,
            version=pipeline.latest_version,
            wire=to_wire(definition),
            first_activated_at=pipeline.activated_at or now,
            activation_time=now,
            start_override=start if start is not None else pipeline.start_override,
        )
    except TailraceError:
        return
    restart = (
        active.schedule_type == "ondemand" or start is not None or pipeline.state is PipelineState.PENDING
    )
    check_backfill(
        pipeline,
        active,
        0 if restart else pipeline.windows_created,
        now,
        limits=service.limits,
        lookahead=service.config.lookahead,
    )


def check_backfill(
    pipeline: Pipeline,
    active: ActiveDefinition,
    first: int,
    now: datetime,
    *,
    limits: Limits,
    lookahead: timedelta,
) -> None:
    """Refuse an activation that would create more instances at once than the owner's limit,
    with the numbers the activation preview shows."""
    most = limits.instances_per_activation
    periods = instances = 0
    first_start = last_start = None
    horizon = now + lookahead
    for window in active.windows(first):
        if window.run_at > horizon:
            break
        if instances > most:
            raise LimitExceeded(
                f"activating {pipeline.id} would create more than {most:,} instances at once "
                f"([limits] instances_per_activation): at least {periods:,} periods and "
                f"{instances:,} instances, scheduled from {_dp(first_start)} "
                f"(preview them with activate-pipeline --dry-run); give a later --start-timestamp "
                "or ask the operator to raise the limit"
            )
        periods += 1
        instances += len(active.plan(window))
        first_start = first_start or window.start
        last_start = window.start
    if instances > most:
        raise LimitExceeded(
            f"activating {pipeline.id} would create {instances:,} instances at once in {periods:,} "
            f"periods (scheduled from {_dp(first_start)} to {_dp(last_start)}); "
            f"the limit is {most:,} per activation ([limits] instances_per_activation); "
            "give a later --start-timestamp or ask the operator to raise the limit"
        )


def _dp(value: datetime | None) -> str:
    # isoformat, not strftime: year 1 is 0001 (strftime drops the zeros).
    return value.isoformat(timespec="seconds")[:19] if value is not None else "?"
