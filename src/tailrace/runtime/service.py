"""The pipeline service: the operations of AWS Data Pipeline's API that change state, over the
state store, plus EvaluateExpression and the Task Runner calls.

Every method is one operation (CreatePipeline, PutPipelineDefinition, ActivatePipeline, ...):
arguments are the request members in snake_case; results are records, enums and plain values.
The read operations' wire shapes (DescribeObjects, QueryObjects, PollForTask's taskObject, the
runs listing) are built in tailrace.api.aws from the store and tailrace.runtime.reads.
Errors: PipelineNotFound / PipelineDeleted, TaskNotFound, InvalidRequest
(tailrace.runtime.errors), DefinitionError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tailrace.clock import Clock, SystemClock, utc
from tailrace.definition import (
    DefinitionError,
    PipelineDefinition,
    Problem,
    ValidationReport,
    from_wire,
    to_wire,
    validate,
)
from tailrace.errors import TailraceError
from tailrace.events import model as ev
from tailrace.ids import pipeline_id as new_pipeline_id
from tailrace.limits import Limits
from tailrace.runtime import quotas, reads
from tailrace.runtime.activation import DefinitionCache, build_active, worker_group_queue
from tailrace.runtime.changes import active_change_problems, add_problems, components_of
from tailrace.runtime.checks import MAX_TAGS, checked_tags, topic_warnings
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.tasks import Task, TaskBroker
from tailrace.runtime.transitions import RuntimeConfig, Step, Transitions
from tailrace.state import (
    TERMINAL,
    Pipeline,
    PipelineState,
    StateStore,
    Status,
    Transaction,
)
from tailrace.storage import Storage

INSTANCE_STATUSES = ("RERUN", "TRY_CANCEL", "MARK_FINISHED")
COMPONENT_STATUSES = ("PAUSE", "RESUME")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreviewWindow:
    index: int
    start: datetime
    end: datetime
    run_at: datetime
    instances: tuple[str, ...]


class PipelineService:
    def __init__(
        self,
        *,
        store: StateStore,
        home: Path,
        clock: Clock | None = None,
        config: RuntimeConfig | None = None,
        definitions: DefinitionCache | None = None,
        storage: Storage | None = None,
        limits: Limits | None = None,
    ) -> None:
        """`storage`, when given, receives each instance's actions.log (fired actions);
        `limits` are the per-owner and definition limits (defaults: tailrace.limits.Limits)."""
        self.store = store
        self.home = home
        self.clock = clock or SystemClock()
        self.config = config or RuntimeConfig()
        self.limits = limits or Limits()
        self.definitions = definitions or DefinitionCache()
        self.transitions = Transitions(
            definitions=self.definitions, config=self.config, storage=storage, home=home, limits=self.limits
        )
        self.tasks = TaskBroker(
            store=store, transitions=self.transitions, clock=self.clock, home=home, limits=self.limits
        )

    # --- helpers ----------------------------------------------------------------------------

    def _locked(self, tx: Transaction, pipeline_id: str) -> Pipeline:
        """Read the pipeline and hold its lock. :raises PipelineNotFound: / PipelineDeleted."""
        return reads.get_pipeline(tx, pipeline_id, lock=True)

    def _get(self, tx: Transaction, pipeline_id: str) -> Pipeline:
        """Read the pipeline without locking it. :raises PipelineNotFound: / PipelineDeleted."""
        return reads.get_pipeline(tx, pipeline_id)

    def _definition(self, tx: Transaction, pipeline: Pipeline, version: int | None) -> PipelineDefinition:
        if version is None:
            raise InvalidRequest(
                f"pipeline {pipeline.id} has no definition; call PutPipelineDefinition first"
            )
        stored = tx.definitions.find(pipeline.id, version)
        if stored is None:
            raise InvalidRequest(f"definition version {version} of pipeline {pipeline.id} does not exist")
        return from_wire(stored.wire, source=f"{pipeline.id} version {version}")

    # --- CreatePipeline / DeletePipeline / tags ---------------------------------------------

    def create_pipeline(
        self,
        name: str,
        unique_id: str,
        *,
        owner: str = "",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        pipeline_id: str | None = None,
    ) -> str:
        """A new PENDING pipeline; the same (owner, uniqueId) returns the existing pipeline's id.
        `pipeline_id` fixes the new id (`tailrace run`: stable ids for log paths); the API never sets it."""
        for what, value in (("name", name), ("uniqueId", unique_id)):
            if not value or len(value) > 1024:
                raise InvalidRequest(f"{what} must be 1 to 1024 characters; found {len(value or '')}")
        tag_map = checked_tags(tags)
        now = self.clock.now()
        with self.store.transaction() as tx:
            existing = tx.pipelines.find_by_unique_id(owner, unique_id)
            if existing is not None:
                if existing.name != name:
                    raise InvalidRequest(
                        f"uniqueId {unique_id!r} already names pipeline {existing.id} ({existing.name!r}), "
                        f"not {name!r}"
                    )
                return existing.id
            pid = pipeline_id or new_pipeline_id()
            tx.pipelines.add(
                Pipeline(
                    id=pid,
                    name=name,
                    unique_id=unique_id,
                    owner=owner,
                    description=description,
                    tags=tag_map,
                    created_at=now,
                    updated_at=now,
                )
            )
            tx.events.append(ev.PipelineCreated(at=now, owner=owner, pipeline_id=pid, name=name))
            return pid

    def delete_pipeline(self, pipeline_id: str) -> None:
        """Delete the pipeline, its definitions and history; runners still working on it hear
        TaskNotFound at their next report and stop."""
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            tx.pipelines.delete(pipeline_id)
            tx.events.append(
                ev.PipelineDeleted(
                    at=self.clock.now(), owner=pipeline.owner, pipeline_id=pipeline_id, name=pipeline.name
                )
            )

    def add_tags(self, pipeline_id: str, tags: Mapping[str, str]) -> None:
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            merged = {**pipeline.tags, **checked_tags(tags)}
            if len(merged) > MAX_TAGS:
                raise InvalidRequest(f"a pipeline has at most {MAX_TAGS} tags; this would make {len(merged)}")
            tx.pipelines.update(pipeline_id, tags=merged)

    def remove_tags(self, pipeline_id: str, tag_keys: Iterable[str]) -> None:
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            keys = set(tag_keys)
            tx.pipelines.update(pipeline_id, tags={k: v for k, v in pipeline.tags.items() if k not in keys})

    # --- definitions ------------------------------------------------------------------------

    def put_definition(
        self,
        pipeline_id: str,
        definition: PipelineDefinition | Mapping[str, Any],
        *,
        validate_only: bool = False,
    ) -> ValidationReport:
        """PutPipelineDefinition (or ValidatePipelineDefinition with validate_only).

        The definition is a PipelineDefinition or the wire form (pipelineObjects,
        parameterObjects, parameterValues). Nothing is saved when the report has errors. On an
        active pipeline the change must keep to the service's rules (no removed objects, no
        changed period, start or references); a refused change leaves the pipeline untouched,
        an accepted one becomes the latest version and runs after the next activation.
        """
        if not isinstance(definition, PipelineDefinition):
            try:
                definition = from_wire(definition)
            except DefinitionError as exc:
                return exc.report
        report = validate(definition, definition.values, limits=self.limits)
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            if not report.errored:
                report = add_problems(report, self._topic_warnings(pipeline.owner, definition))
            if (
                not report.errored
                and pipeline.active_version is not None
                and pipeline.state
                in (
                    PipelineState.SCHEDULED,
                    PipelineState.DEACTIVATING,
                )
            ):
                active = self._definition(tx, pipeline, pipeline.active_version)
                report = add_problems(report, active_change_problems(active, definition))
            if report.errored or validate_only:
                return report
            now = self.clock.now()
            version = tx.definitions.add(pipeline_id, to_wire(definition), at=now)
            tx.pipelines.update(pipeline_id, latest_version=version.version)
            if pipeline.active_version is None:
                tx.components.replace(pipeline_id, components_of(pipeline_id, definition, version.version))
            tx.events.append(
                ev.DefinitionPut(
                    at=now,
                    owner=pipeline.owner,
                    pipeline_id=pipeline_id,
                    version=version.version,
                    warnings=len(report.warnings),
                )
            )
        return report

    def _topic_warnings(self, owner: str, definition: PipelineDefinition) -> list[Problem]:
        return topic_warnings(self.transitions.topic_check, owner, definition)

    def get_definition(self, pipeline_id: str, version: str = "latest") -> dict[str, Any]:
        """GetPipelineDefinition: the wire form of the latest or the active version."""
        if version not in ("latest", "active"):
            raise InvalidRequest(f"version must be 'latest' or 'active'; found {version!r}")
        with self.store.transaction(readonly=True) as tx:
            pipeline = self._get(tx, pipeline_id)
            number = pipeline.latest_version if version == "latest" else pipeline.active_version
            if number is None:
                return {"pipelineObjects": [], "parameterObjects": [], "parameterValues": []}
            stored = tx.definitions.find(pipeline_id, number)
            assert stored is not None
            wire = dict(stored.wire)
        return {
            "pipelineObjects": wire.get("pipelineObjects", []),
            "parameterObjects": wire.get("parameterObjects", []),
            "parameterValues": wire.get("parameterValues", []),
        }

    # --- ActivatePipeline / DeactivatePipeline ----------------------------------------------

    def activate(
        self,
        pipeline_id: str,
        *,
        start_timestamp: datetime | None = None,
        parameter_values: Mapping[str, str | Sequence[str]] | None = None,
    ) -> None:
        """ActivatePipeline: validate the latest definition (with parameter_values replacing its
        values), make it the active version and start scheduling.

        A start_timestamp moves the first window there (earlier windows that have not run are
        SKIPPED); without one, a re-activation resumes where the pipeline stopped. An on-demand
        pipeline gets one new run per activation.
        :raises DefinitionError: listing every problem when the definition is invalid.
        """
        now = self.clock.now()
        start = utc(start_timestamp) if start_timestamp is not None else None
        # Counting the backfill plans up to [limits] instances_per_activation of instances:
        # done before the write transaction, so that other writers do not wait for it.
        quotas.precheck_backfill(self, pipeline_id, start, parameter_values, now)
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            if pipeline.state is PipelineState.DEACTIVATING:
                raise InvalidRequest(
                    f"pipeline {pipeline_id} is still deactivating; activate it once INACTIVE"
                )
            definition = self._definition(tx, pipeline, pipeline.latest_version)
            if parameter_values is not None:
                values = {k: (v if isinstance(v, str) else tuple(v)) for k, v in parameter_values.items()}
                definition = dataclasses.replace(definition, values=values)
            validate(definition, definition.values, limits=self.limits).raise_for_errors()
            if pipeline.state is not PipelineState.SCHEDULED:
                quotas.check_active_pipelines(tx, pipeline, self.limits)
            version = pipeline.latest_version
            assert version is not None
            if parameter_values is not None:
                version = tx.definitions.add(pipeline_id, to_wire(definition), at=now).version
            first = pipeline.activated_at or now
            override = start if start is not None else pipeline.start_override
            try:
                active = build_active(
                    pipeline_id=pipeline_id,
                    version=version,
                    wire=to_wire(definition),
                    first_activated_at=first,
                    activation_time=now,
                    start_override=override,
                )
            except TailraceError as exc:
                raise InvalidRequest(f"pipeline {pipeline_id} cannot be scheduled: {exc}")
            restart = (
                active.schedule_type == "ondemand"
                or start is not None
                or pipeline.state is PipelineState.PENDING
            )
            paused = {c.id for c in tx.components.list(pipeline_id) if c.status is Status.PAUSED}
            tx.components.replace(
                pipeline_id,
                components_of(pipeline_id, definition, version, status=Status.SCHEDULED, paused=paused),
            )
            if start is not None:
                for inst in tx.instances.in_status(
                    pipeline_id, frozenset(Status) - TERMINAL - {Status.RUNNING}
                ):
                    if inst.scheduled_start < start:
                        tx.instances.update(
                            pipeline_id,
                            inst.id,
                            status=Status.SKIPPED,
                            ended_at=now,
                            due_at=None,
                            late_at=None,
                            detail={"reason": f"activation started at {start.isoformat()}"},
                        )
            tx.pipelines.update(
                pipeline_id,
                state=PipelineState.SCHEDULED,
                latest_version=version,
                active_version=version,
                activated_at=first,
                last_activated_at=now,
                activation=pipeline.activation + 1,
                start_override=override,
                windows_created=0 if restart else pipeline.windows_created,
                next_window_at=now,
                finished_at=None,
            )
            tx.events.append(
                ev.PipelineActivated(
                    at=now,
                    owner=pipeline.owner,
                    pipeline_id=pipeline_id,
                    version=version,
                    start=start.isoformat() if start else None,
                )
            )

    def preview_activation(
        self,
        pipeline_id: str,
        *,
        start_timestamp: datetime | None = None,
        parameter_values: Mapping[str, str | Sequence[str]] | None = None,
        limit: int = 100_000,
    ) -> list[PreviewWindow]:
        """The windows (and their instance ids) that activating now would create at once: the
        backfill from a past start. Nothing is changed."""
        now = self.clock.now()
        with self.store.transaction(readonly=True) as tx:
            pipeline = self._get(tx, pipeline_id)
            definition = self._definition(tx, pipeline, pipeline.latest_version)
        if parameter_values is not None:
            values = {k: (v if isinstance(v, str) else tuple(v)) for k, v in parameter_values.items()}
            definition = dataclasses.replace(definition, values=values)
        validate(definition, definition.values, limits=self.limits).raise_for_errors()
        start = utc(start_timestamp) if start_timestamp is not None else pipeline.start_override
        active = build_active(
            pipeline_id=pipeline_id,
            version=pipeline.latest_version or 0,
            wire=to_wire(definition),
            first_activated_at=pipeline.activated_at or now,
            activation_time=now,
            start_override=start,
        )
        first = (
            0
            if (start_timestamp is not None or pipeline.state is PipelineState.PENDING)
            else pipeline.windows_created
        )
        horizon = now + self.config.lookahead
        out: list[PreviewWindow] = []
        for window in active.windows(first):
            if window.run_at > horizon or len(out) >= limit:
                break
            ids = tuple(i.id for i in active.plan(window))
            out.append(
                PreviewWindow(
                    index=window.index,
                    start=window.start,
                    end=window.end,
                    run_at=window.run_at,
                    instances=ids,
                )
            )
        return out

    def deactivate(self, pipeline_id: str, *, cancel_active: bool = True) -> None:
        """DeactivatePipeline: stop scheduling. With cancel_active (the default) waiting work is
        CANCELED and running attempts are asked to stop; otherwise running attempts finish. The
        pipeline is DEACTIVATING until nothing runs, then INACTIVE.

        One short transaction whatever the backlog: it stops scheduling and claims, asks running
        attempts to stop and cancels the first `cancel_inline` waiting instances; the
        scheduler cancels the rest in slices of `cancel_per_step` (while next_window_at is set
        on the DEACTIVATING pipeline)."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            if pipeline.state not in (PipelineState.SCHEDULED, PipelineState.FINISHED):
                return
            pipeline = tx.pipelines.update(pipeline_id, state=PipelineState.DEACTIVATING, next_window_at=None)
            more = False
            if cancel_active:
                step = Step(tx=tx, pipeline=pipeline, now=now)
                for attempt in tx.attempts.running(pipeline_id):
                    inst = tx.instances.find(pipeline_id, attempt.instance_id)
                    if inst is not None and inst.head_attempt == attempt.id:
                        self.transitions.cancel(step, inst, "pipeline deactivated")
                more = self.transitions.cancel_waiting(
                    step, "pipeline deactivated", limit=self.config.cancel_inline
                )
            if more:
                tx.pipelines.update(pipeline_id, next_window_at=now)
            elif not tx.attempts.running(pipeline_id):
                tx.pipelines.update(pipeline_id, state=PipelineState.INACTIVE, deactivated_at=now)

    # --- SetStatus / EvaluateExpression -----------------------------------------------------

    def set_status(self, pipeline_id: str, object_ids: Collection[str], status: str) -> None:
        """SetStatus: PAUSE / RESUME components; RERUN / TRY_CANCEL / MARK_FINISHED instances."""
        status = status.upper()
        if status not in INSTANCE_STATUSES + COMPONENT_STATUSES:
            raise InvalidRequest(
                f"status must be one of {', '.join(INSTANCE_STATUSES + COMPONENT_STATUSES)}; found {status!r}"
            )
        now = self.clock.now()
        with self.store.transaction() as tx:
            pipeline = self._locked(tx, pipeline_id)
            if pipeline.state is PipelineState.FINISHED:
                raise InvalidRequest(
                    f"pipeline {pipeline_id} is FINISHED; activate it again to change its objects"
                )
            step = Step(tx=tx, pipeline=pipeline, now=now)
            instances = tx.instances.find_many(pipeline_id, object_ids)
            components = {c.id: c for c in tx.components.list(pipeline_id)}
            missing = [i for i in object_ids if i not in instances and i not in components]
            if missing:
                raise InvalidRequest(f"no object {missing[0]!r} in pipeline {pipeline_id}")
            if instances and len(instances) != len(set(object_ids)):
                raise InvalidRequest("objectIds must be all components or all instances, not a mix")
            if status in COMPONENT_STATUSES:
                if instances:
                    raise InvalidRequest(
                        f"{status} applies to components; {next(iter(instances))!r} is an instance"
                    )
                for cid in object_ids:
                    self._pause_or_resume(step, cid, pause=status == "PAUSE")
                return
            if not instances:
                raise InvalidRequest(
                    f"{status} applies to instances; {next(iter(object_ids))!r} is a component"
                )
            if status == "RERUN":
                for iid, inst in instances.items():
                    if not inst.terminal:
                        raise InvalidRequest(f"{iid} is {inst.status}; only ended instances can be rerun")
            seen: set[str] = set()
            for iid in object_ids:
                if iid in seen:
                    continue  # already restarted by this request (a resource reruns its activities)
                inst = tx.instances.get(pipeline_id, iid)
                if status == "RERUN":
                    self.transitions.rerun(step, inst, seen=seen)
                elif status == "TRY_CANCEL":
                    self.transitions.cancel(step, inst, "TryCancel")
                else:
                    self.transitions.mark_finished(step, inst)

    def _pause_or_resume(self, step: Step, component_id: str, *, pause: bool) -> None:
        tx, pid = step.tx, step.pipeline.id
        tx.components.update(pid, component_id, status=Status.PAUSED if pause else Status.SCHEDULED)
        if pause:
            waiting = {Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER}
            for inst in tx.instances.in_status(pid, waiting, component_id=component_id):
                tx.instances.update(
                    pid, inst.id, expect_status=waiting, status=Status.PAUSED, due_at=inst.late_at
                )
            return
        resumed = []
        for inst in tx.instances.in_status(pid, {Status.PAUSED}, component_id=component_id):
            again = tx.instances.update(
                pid,
                inst.id,
                status=Status.WAITING_ON_DEPENDENCIES,
                ready_at=None,
                due_at=self.transitions.next_due(inst, Status.WAITING_ON_DEPENDENCIES, step.now),
            )
            if again is not None:
                resumed.append(again)
        self.transitions.evaluate(step, resumed)

    def evaluate_expression(self, pipeline_id: str, object_id: str, expression: str) -> str:
        """EvaluateExpression against a component or an instance of the active definition."""
        with self.store.transaction(readonly=True) as tx:
            return reads.evaluate_expression(self.definitions, tx, pipeline_id, object_id, expression)

    # --- Task Runner API --------------------------------------------------------------------

    def poll_for_task(
        self,
        worker_group: str,
        *,
        hostname: str | None = None,
        runner_id: str | None = None,
        owner: str | None = None,
    ) -> Task | None:
        """PollForTask: the next task of the worker group, or None (tailrace.api.aws.tasks
        shapes it as a taskObject). With `owner` (the API caller's), only that owner's
        pipelines hand out tasks."""
        if not worker_group:
            raise InvalidRequest("workerGroup is required")
        return self.tasks.claim(
            [worker_group_queue(worker_group)],
            runner_id=runner_id or hostname or "",
            hostname=hostname,
            owner=owner,
        )

    def claim(self, queues: Collection[str], *, runner_id: str, hostname: str | None) -> Task | None:
        """A task from internal queues (embedded workers, resource pools)."""
        return self.tasks.claim(queues, runner_id=runner_id, hostname=hostname)

    def report_task_progress(self, task_id: str, fields: Mapping[str, Any] | None = None) -> bool:
        """ReportTaskProgress: extends the lease; returns `canceled`."""
        return self.tasks.report_progress(task_id, fields)

    def report_task_runner_heartbeat(
        self, taskrunner_id: str, *, worker_group: str | None = None, hostname: str | None = None
    ) -> bool:
        """ReportTaskRunnerHeartbeat: returns `terminate`."""
        return self.tasks.runner_heartbeat(taskrunner_id, worker_group=worker_group, hostname=hostname)

    def set_task_status(
        self,
        task_id: str,
        task_status: str,
        *,
        error_id: str | None = None,
        error_message: str | None = None,
        error_stack_trace: str | None = None,
    ) -> None:
        """SetTaskStatus: FINISHED, FAILED or FALSE (preconditions)."""
        self.tasks.set_status(
            task_id,
            task_status,
            error_id=error_id,
            error_message=error_message,
            error_stack_trace=error_stack_trace,
        )
