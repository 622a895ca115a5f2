"""`tailrace run`: plan every due period of a definition and run it once, in dependency order.

No state store: statuses live in memory for the run; outputs and attempt logs go to the object
store exactly as the service would write them. Retries run back to back (the service waits
`retryDelay` between them).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tailrace.clock import Clock, SystemClock, format_dp, utc
from tailrace.definition import (
    Category,
    DefinitionError,
    PipelineDefinition,
    effective_parameters,
    resolve,
    validate,
)
from tailrace.engines.registry import DEFAULT_ENGINE, EngineRegistry
from tailrace.errors import TailraceError
from tailrace.expressions import render
from tailrace.plan import PlannedInstance, Planner, ScopeBuilder, topological_order
from tailrace.runtime.actions import FiredAction, fire_action
from tailrace.runtime.activities import execute_attempt
from tailrace.runtime.context import AttemptContext, AttemptOutcome, ListLog
from tailrace.runtime.logs import attempt_log_uri, closing_text
from tailrace.storage import Storage

FAILED_STATES = frozenset({"FAILED", "CASCADE_FAILED", "CANCELED", "TIMEDOUT"})


@dataclass(kw_only=True)
class InstanceResult:
    instance: PlannedInstance
    status: str
    attempts: int = 0
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    actions: list[FiredAction] = field(default_factory=list)
    log_uri: str | None = None


@dataclass(kw_only=True)
class RunReport:
    pipeline_id: str
    until: datetime
    results: list[InstanceResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(r.status in FAILED_STATES for r in self.results)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            for key, value in r.summary.items():
                if isinstance(value, int):
                    out[key] = out.get(key, 0) + value
        return out


def local_pipeline_id(source: str | None) -> str:
    """A stable id for one-shot runs of the same file: df-LOCAL + 12 hex digits."""
    digest = hashlib.sha1((source or "<definition>").encode()).hexdigest()[:12].upper()
    return f"df-LOCAL{digest}"


class LocalRunner:
    def __init__(
        self,
        *,
        storage: Storage,
        home: Path,
        engines: EngineRegistry | None = None,
        hive_engine: str = DEFAULT_ENGINE,
        clock: Clock | None = None,
        echo: Callable[[str], None] = lambda line: None,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.storage = storage
        self.home = home
        self.engines = engines
        self.hive_engine = hive_engine
        self.clock = clock or SystemClock()
        self.echo = echo
        self.progress = progress

    def run(
        self,
        defn: PipelineDefinition,
        *,
        values: Mapping[str, Any] | None = None,
        until: datetime | None = None,
        pipeline_id: str | None = None,
    ) -> RunReport:
        report = validate(defn, values)
        if report.errors:
            raise DefinitionError(report)
        resolved = resolve(defn)
        parameters = effective_parameters(defn, values or {})
        now = self.clock.now()
        limit = min(utc(until), now) if until is not None else now
        pid = pipeline_id or local_pipeline_id(defn.source)
        planner = Planner(resolved, activated_at=now, default_retries=0)
        instances = topological_order(planner.plan_until(limit))
        scopes = ScopeBuilder(resolved, planner, pipeline_id=pid, parameters=parameters)
        run = RunReport(pipeline_id=pid, until=limit, warnings=[str(w) for w in report.warnings])
        if not instances:
            self.progress(f"nothing to run: no period is due before {format_dp(limit)}")
            return run
        self.progress(f"planned {len(instances)} instances up to {format_dp(limit)} (pipeline {pid})")
        statuses: dict[str, str] = {}
        work_root = Path(tempfile.mkdtemp(prefix="tailrace-run-"))
        try:
            for inst in instances:
                result = self._run_instance(inst, statuses, scopes, resolved, parameters, pid, work_root)
                statuses[inst.id] = result.status
                run.results.append(result)
                line = f"{inst.id}  {result.status}"
                if result.error:
                    line += f"  ({result.error})"
                self.echo(line)
        finally:
            shutil.rmtree(work_root, ignore_errors=True)
        return run

    def _run_instance(
        self,
        inst: PlannedInstance,
        statuses: dict[str, str],
        scopes: ScopeBuilder,
        resolved: Any,
        parameters: Mapping[str, Any],
        pid: str,
        work_root: Path,
    ) -> InstanceResult:
        blockers = [d for d in (*inst.depends_on, *([inst.runs_on] if inst.runs_on else [])) if d in statuses]
        failed = [d for d in blockers if statuses[d] in FAILED_STATES]
        if failed:
            return InstanceResult(
                instance=inst, status="CASCADE_FAILED", error=f"{failed[0]} {statuses[failed[0]]}"
            )
        if inst.category in (Category.DATA_NODE, Category.RESOURCE):
            return InstanceResult(instance=inst, status="FINISHED")
        result = InstanceResult(instance=inst, status="FAILED")
        for attempt in range(1, inst.maximum_retries + 2):
            self.progress(f"running {inst.id} (attempt {attempt})")
            log = ListLog()
            ctx = AttemptContext(
                pipeline_id=pid,
                resolved=resolved,
                parameters=parameters,
                instance=inst,
                attempt=attempt,
                storage=self.storage,
                scopes=scopes,
                work_dir=work_root / f"{inst.id.lstrip('@')}_{attempt}",
                log=log,
                engines=self.engines,
                hive_engine=self.hive_engine,
                clock=self.clock,
                actual_start=self.clock.now(),
            )
            outcome = execute_attempt(ctx)
            result.attempts = attempt
            result.log_uri = self._save_log(inst, attempt, log, outcome, scopes, pid)
            if outcome.ok:
                result.status, result.error, result.summary = "FINISHED", None, dict(outcome.summary)
                break
            result.error = outcome.error_message or outcome.status
            if outcome.status == "FALSE":
                result.error = f"precondition does not hold: {outcome.error_message or 'false'}"
        trigger = "onSuccess" if result.status == "FINISHED" else "onFail"
        node_scope = scopes.instance_scope(inst, extra={"@status": result.status})
        for action_id in inst.on_success if trigger == "onSuccess" else inst.on_fail:
            try:
                fired = fire_action(
                    scopes, action_id, trigger=trigger, node_id=inst.id, node_scope=node_scope
                )
            except TailraceError as exc:
                self.progress(f"{inst.id}: {trigger} action '{action_id}' failed: {exc}")
                continue
            result.actions.append(fired)
            self.progress(f"{inst.id}: {fired.describe()}")
        return result

    def _save_log(
        self,
        inst: PlannedInstance,
        attempt: int,
        log: ListLog,
        outcome: AttemptOutcome,
        scopes: ScopeBuilder,
        pid: str,
    ) -> str | None:
        text = log.text()
        text = closing_text(text, outcome)
        comp = scopes.resolved.objects[inst.component_id]
        raw = comp.string("pipelineLogUri")
        base = None
        if raw:
            try:
                rendered = render(raw, scopes.component_scope(inst.component_id))
                base = rendered if isinstance(rendered, str) else rendered[0]
            except TailraceError:
                base = None
        uri = attempt_log_uri(
            pipeline_log_uri=base,
            home=self.home,
            pipeline_id=pid,
            component_id=inst.component_id,
            instance_id=inst.id,
            attempt=attempt,
        )
        try:
            self.storage.write_bytes(uri, text.encode("utf-8"))
        except TailraceError as exc:
            self.progress(f"{inst.id}: could not write the attempt log to {uri}: {exc}")
            return None
        return uri
