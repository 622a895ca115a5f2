"""How instances move between statuses: readiness, attempt outcomes, retries, cascade, reruns,
cancellation, resources and actions.

Every function here runs inside a transaction that holds the pipeline's row lock (a `Step`),
so the scheduler, the task API and SetStatus never interleave on one pipeline. Claims are the
one exception: they lock only the instance they take (see tasks.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tailrace.errors import TailraceError
from tailrace.limits import Limits
from tailrace.runtime.activation import (
    RESOURCE_QUEUE,
    ActiveDefinition,
    DefinitionCache,
    seconds,
)
from tailrace.runtime.rerun import repinned
from tailrace.runtime.steps import RuntimeConfig, Step
from tailrace.state import TERMINAL, Attempt, Instance, Status
from tailrace.storage import Storage

log = logging.getLogger("tailrace.service")

ACTIVE = frozenset({Status.WAITING_FOR_RUNNER, Status.RUNNING})
FAILED_LIKE = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT})
WAITING = frozenset({Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER, Status.PAUSED})


def _mode(inst: Instance) -> str:
    return str(inst.spec.get("failure_and_rerun_mode") or "none")


TopicCheck = Callable[[str, str], str | None]


class Transitions:
    def __init__(
        self,
        *,
        definitions: DefinitionCache,
        config: RuntimeConfig,
        storage: Storage | None = None,
        home: Path | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.definitions = definitions
        self.config = config
        self.limits = limits or Limits()
        self.storage = storage
        self.home = home
        self.topic_check: TopicCheck | None = None
        """(owner, topicArn) -> None when the owner has that topic, else why not; set by the
        service assembly when topics are served (checked at PutPipelineDefinition and firing)."""

    def active(self, step: Step, version: int) -> ActiveDefinition:
        def load(v: int) -> Mapping[str, Any]:
            found = step.tx.definitions.find(step.pipeline.id, v)
            if found is None:
                raise TailraceError(f"definition version {v} of {step.pipeline.id} is missing")
            return found.wire

        return self.definitions.get(step.pipeline, version, load)

    # --- readiness --------------------------------------------------------------------------

    def evaluate(self, step: Step, candidates: Iterable[Instance]) -> None:
        """Move every candidate whose dependencies allow it on (and then their dependents)."""
        queue = sorted({c.id: c for c in candidates}.values(), key=lambda i: (i.scheduled_start, i.id))
        tx, pid = step.tx, step.pipeline.id
        while queue:
            inst = tx.instances.find(pid, queue.pop(0).id)
            if inst is None or inst.status is not Status.WAITING_ON_DEPENDENCIES or inst.run_at > step.now:
                continue
            if inst.category == "RESOURCE":
                continue  # launched on demand by the activities that run on it
            step.evaluated += 1
            changed = self._evaluate_one(step, inst)
            if changed is not None:
                queue.extend(self._followers(step, changed))
                queue.sort(key=lambda i: (i.scheduled_start, i.id))

    def _followers(self, step: Step, inst: Instance) -> list[Instance]:
        """Instances that may move now that `inst` changed: its dependents, and the next waiting
        instances of its component (a maxActiveInstances slot may have freed)."""
        tx, pid = step.tx, step.pipeline.id
        if not inst.terminal:
            return []
        out = [
            d for d in tx.instances.dependents(pid, [inst.id]) if d.status is Status.WAITING_ON_DEPENDENCIES
        ]
        if inst.category == "ACTIVITY":
            # Ready instances held back by maxActiveInstances carry ready_at; the oldest go first.
            out += tx.instances.in_status(
                pid,
                {Status.WAITING_ON_DEPENDENCIES},
                component_id=inst.component_id,
                limit=self._max_active(inst),
                ready_only=True,
            )
        return out

    def _max_active(self, inst: Instance) -> int:
        value = inst.spec.get("max_active_instances")
        return int(value) if value else self.config.default_max_active

    def _evaluate_one(self, step: Step, inst: Instance) -> Instance | None:
        tx, pid = step.tx, step.pipeline.id
        wanted = list(dict.fromkeys((*inst.depends_on, *inst.preconditions)))
        deps = tx.instances.find_many(pid, wanted)
        failed = [d for d in deps.values() if d.status in FAILED_LIKE]
        if failed:
            if _mode(inst) == "cascade":
                return self.cascade_fail(step, inst, failed[0])
            return None  # without cascade, a failed dependency blocks until it is rerun
        if len(deps) < len(wanted) or any(d.status is not Status.FINISHED for d in deps.values()):
            return None
        if inst.category == "DATA_NODE":
            return self.finish(step, inst, reason="ready")
        if inst.category == "ACTIVITY":
            if inst.resource_id:
                resource = tx.instances.find(pid, inst.resource_id)
                if resource is None:
                    return None
                if resource.status in FAILED_LIKE:
                    return self.cancel(step, inst, f"resource {resource.id} is {resource.status}")
            if inst.reruns == 0:
                running = tx.instances.count_in_status(
                    pid, ACTIVE, component_id=inst.component_id, first_runs_only=True
                )
                if running >= self._max_active(inst):
                    if inst.ready_at is None:  # remember it is ready: the next free slot is its
                        tx.instances.update(pid, inst.id, ready_at=step.now)
                    return None
        return self.dispatch(step, inst)

    def dispatch(self, step: Step, inst: Instance) -> Instance | None:
        """Hand the instance to runners (WAITING_FOR_RUNNER), launching its resource if needed."""
        if inst.resource_id:
            self.launch_resource(step, inst.resource_id)
        return step.tx.instances.update(
            step.pipeline.id,
            inst.id,
            expect_status={Status.WAITING_ON_DEPENDENCIES},
            status=Status.WAITING_FOR_RUNNER,
            ready_at=step.now,
            due_at=self.next_due(inst, Status.WAITING_FOR_RUNNER, step.now),
        )

    def launch_resource(self, step: Step, resource_id: str) -> None:
        tx, pid = step.tx, step.pipeline.id
        res = tx.instances.find(pid, resource_id)
        if res is None or res.status in (Status.WAITING_FOR_RUNNER, Status.RUNNING):
            return
        if res.status is Status.WAITING_ON_DEPENDENCIES or res.status is Status.FINISHED:
            # FINISHED: shut down after its earlier work; a rerun or a late dependent relaunches it.
            tx.instances.update(
                pid,
                res.id,
                status=Status.WAITING_FOR_RUNNER,
                queue=RESOURCE_QUEUE,
                ready_at=step.now,
                ended_at=None,
                due_at=res.late_at,
                detail={"reason": "an activity needs it"},
            )

    def next_due(
        self, inst: Instance, status: Status, now: datetime, *, attempt: Attempt | None = None
    ) -> datetime | None:
        """When the scheduler must look at the instance again, given its new status."""
        if status in TERMINAL:
            return None
        spec = inst.spec
        times = [inst.late_at]
        if status is Status.WAITING_ON_DEPENDENCIES and inst.run_at > now and inst.category != "RESOURCE":
            times.append(inst.run_at)
        started = attempt.started_at if attempt is not None else None
        if status is Status.RUNNING and started is not None:
            limit = seconds(spec, "terminate_after" if inst.category == "RESOURCE" else "attempt_timeout")
            if limit is not None:
                times.append(started + limit)
        if inst.category == "PRECONDITION" and inst.started_at is not None:
            limit = seconds(spec, "precondition_timeout")
            if limit is not None:
                times.append(inst.started_at + limit)
        found = [t for t in times if t is not None]
        return min(found) if found else None

    # --- endings ----------------------------------------------------------------------------

    def finish(self, step: Step, inst: Instance, *, reason: str, fire: bool = True) -> Instance | None:
        done = step.tx.instances.update(
            step.pipeline.id,
            inst.id,
            status=Status.FINISHED,
            ended_at=step.now,
            due_at=None,
            late_at=None,
            error_message=None,
            detail={"reason": reason},
        )
        if done is not None:
            if fire:
                self.fire(step, done, "onSuccess")
            self.settled(step, done)
        return done

    def fail(
        self, step: Step, inst: Instance, message: str, *, status: Status = Status.FAILED
    ) -> Instance | None:
        done = step.tx.instances.update(
            step.pipeline.id,
            inst.id,
            status=status,
            ended_at=step.now,
            due_at=None,
            late_at=None,
            error_message=message,
            detail={"reason": message},
        )
        if done is not None:
            if _mode(done) == "cascade":
                self._cancel_preconditions(step, done)
            self.fire(step, done, "onFail")
            self.settled(step, done)
        return done

    def cascade_fail(self, step: Step, inst: Instance, cause: Instance) -> Instance | None:
        done = step.tx.instances.update(
            step.pipeline.id,
            inst.id,
            expect_status=WAITING,
            status=Status.CASCADE_FAILED,
            cascade_failed_on=cause.cascade_failed_on or cause.id,
            ended_at=step.now,
            due_at=None,
            late_at=None,
            error_message=f"dependency {cause.id} is {cause.status}",
            detail={"cause": cause.id},
        )
        if done is not None:
            self._cancel_preconditions(step, done)
            self.fire(step, done, "onFail")
            self.settled(step, done)
        return done

    def cancel(self, step: Step, inst: Instance, reason: str) -> Instance | None:
        """Cancel a waiting instance now; ask a running one's runner to stop (it ends CANCELED)."""
        tx, pid = step.tx, step.pipeline.id
        if inst.status is Status.RUNNING:
            if inst.head_attempt:
                tx.attempts.update(
                    pid, inst.head_attempt, expect_status={Status.RUNNING}, cancel_reason=reason
                )
            return None
        if inst.status not in WAITING:
            return None
        return self._canceled(step, inst, reason)

    def cancel_waiting(self, step: Step, reason: str, *, limit: int) -> bool:
        """Cancel up to `limit` of the pipeline's waiting instances (a deactivation); True when
        more remain. Nothing else is moved on: the whole pipeline's waiting work is going."""
        tx, pid = step.tx, step.pipeline.id
        batch = tx.instances.in_status(pid, WAITING, limit=limit + 1)
        for inst in batch[:limit]:
            tx.instances.update(
                pid,
                inst.id,
                expect_status=WAITING,
                status=Status.CANCELED,
                ended_at=step.now,
                due_at=None,
                late_at=None,
                error_message=reason,
                detail={"reason": reason},
            )
        return len(batch) > limit

    def _canceled(self, step: Step, inst: Instance, reason: str) -> Instance | None:
        done = step.tx.instances.update(
            step.pipeline.id,
            inst.id,
            expect_status=WAITING | {Status.RUNNING},
            status=Status.CANCELED,
            ended_at=step.now,
            due_at=None,
            late_at=None,
            error_message=reason,
            detail={"reason": reason},
        )
        if done is not None:
            if _mode(done) == "cascade":
                self._cancel_preconditions(step, done)
            self.settled(step, done)
        return done

    def _cancel_preconditions(self, step: Step, inst: Instance) -> None:
        for pre_id in inst.preconditions:
            pre = step.tx.instances.find(step.pipeline.id, pre_id)
            if pre is not None and not pre.terminal:
                self.cancel(step, pre, f"{inst.id} is {inst.status}")

    def settled(self, step: Step, inst: Instance) -> None:
        """After an instance reached a final status: move what waited on it, tidy resources."""
        tx, pid = step.tx, step.pipeline.id
        if inst.category == "RESOURCE" and inst.status in FAILED_LIKE:
            for dep in tx.instances.dependents(pid, [inst.id]):
                if not dep.terminal:
                    self.cancel(step, dep, f"resource {inst.id} is {inst.status}")
        self.evaluate(step, self._followers(step, inst))
        if inst.resource_id:
            self.resource_check(step, inst.resource_id)

    def resource_check(self, step: Step, resource_id: str) -> None:
        """Shut a resource down once everything that runs on it has ended."""
        tx, pid = step.tx, step.pipeline.id
        res = tx.instances.find(pid, resource_id)
        if res is None or res.terminal:
            return
        if any(not d.terminal for d in tx.instances.dependents(pid, [res.id])):
            return
        if res.status is Status.RUNNING and res.head_attempt:
            tx.attempts.update(
                pid,
                res.head_attempt,
                expect_status={Status.RUNNING},
                status=Status.FINISHED,
                ended_at=step.now,
                lease_expires_at=None,
                cancel_reason="ShutDown",
            )
        self.finish(step, res, reason="every activity on it has ended", fire=True)

    # --- attempts ---------------------------------------------------------------------------

    def attempt_ended(
        self,
        step: Step,
        inst: Instance,
        attempt: Attempt,
        outcome: str,
        *,
        error_id: str | None = None,
        error_message: str | None = None,
        error_stack_trace: str | None = None,
    ) -> None:
        """A runner reported (or the service decided) how an attempt ended.

        outcome: FINISHED, FAILED, FALSE (precondition), CANCELED (the runner gave the task back
        or obeyed a cancel), TIMEDOUT (attemptTimeout) or LOST (the lease expired).
        """
        tx, pid, now = step.tx, step.pipeline.id, step.now
        final = {"LOST": Status.FAILED}.get(outcome) or Status(outcome)
        if outcome == "LOST":
            error_id = error_id or "LeaseExpired"
        done = tx.attempts.update(
            pid,
            attempt.id,
            expect_status={Status.RUNNING},
            status=final,
            ended_at=now,
            lease_expires_at=None,
            error_id=error_id,
            error_message=error_message,
            error_stack_trace=error_stack_trace,
        )
        if done is None or inst.head_attempt != attempt.id or inst.status is not Status.RUNNING:
            return
        reason = attempt.cancel_reason
        if outcome == "FINISHED":
            if inst.category == "RESOURCE":
                return  # a resource's attempt ends only through resource_check or its timeout
            self.finish(step, inst, reason="attempt finished")
            return
        if reason == "PreconditionTimeout":
            self.fail(step, inst, "precondition did not hold within preconditionTimeout")
            return
        if reason and reason != "AttemptTimeout":
            self._canceled(step, inst, reason)
            return
        spec = inst.spec
        if outcome == "CANCELED":
            # The runner gave the task back (it is stopping): run it again, the try not counted.
            self._retry(step, inst, ready_at=now, message=error_message or "runner stopped", consume=False)
            return
        if outcome == "FALSE":
            limit = seconds(spec, "precondition_timeout")
            if limit is not None and inst.started_at is not None and now >= inst.started_at + limit:
                self.fail(step, inst, f"precondition did not hold within preconditionTimeout ({limit})")
                return
            delay = seconds(spec, "retry_delay") or timedelta(0)
            self._retry(
                step,
                inst,
                ready_at=now + delay,
                message=error_message or "precondition is false",
                consume=False,
            )
            return
        message = error_message or error_id or outcome
        if inst.tries_left > 0:
            # A lost runner's task is handed out again at once (Task Runner's reassignment);
            # a failure of the work itself waits retryDelay.
            delay = timedelta(0) if outcome == "LOST" else seconds(spec, "retry_delay") or timedelta(0)
            self._retry(step, inst, ready_at=now + delay, message=message, consume=True)
        elif inst.category == "RESOURCE":
            self.fail(step, inst, message, status=Status.TIMEDOUT if outcome == "TIMEDOUT" else Status.FAILED)
        else:
            self.fail(step, inst, message)

    def _retry(self, step: Step, inst: Instance, *, ready_at: datetime, message: str, consume: bool) -> None:
        tries = inst.tries_left - 1 if consume else inst.tries_left
        step.tx.instances.update(
            step.pipeline.id,
            inst.id,
            status=Status.WAITING_FOR_RUNNER,
            tries_left=tries,
            ready_at=ready_at,
            error_message=message,
            due_at=self.next_due(inst, Status.WAITING_FOR_RUNNER, step.now),
            detail={
                "reason": "retry" if consume else "again",
                "error": message,
                "ready_at": ready_at.isoformat(),
            },
        )

    def expire(self, step: Step, inst: Instance, attempt: Attempt) -> None:
        """The runner stopped reporting: its lease ran out, so the attempt is lost and retried."""
        at = attempt.lease_expires_at.isoformat() if attempt.lease_expires_at else "?"
        self.attempt_ended(
            step,
            inst,
            attempt,
            "LOST",
            error_message=f"the task runner {attempt.runner_id or ''} stopped reporting progress; lease expired at {at}",
        )

    def on_due(self, step: Step, inst: Instance) -> None:
        """An instance's timer went off: late action, timeouts, or its run time arrived."""
        tx, pid, now = step.tx, step.pipeline.id, step.now
        if inst.late_at is not None and inst.late_at <= now and not inst.terminal:
            inst = tx.instances.update(pid, inst.id, late_at=None) or inst
            self.fire(step, inst, "onLateAction")
            inst = tx.instances.get(pid, inst.id)
        attempt = tx.attempts.find(pid, inst.head_attempt) if inst.head_attempt else None
        if inst.status is Status.RUNNING and attempt is not None and attempt.status is Status.RUNNING:
            if inst.category == "RESOURCE":
                limit = seconds(inst.spec, "terminate_after")
                if limit is not None and now >= attempt.started_at + limit:
                    # terminateAfter: TIMEDOUT, never retried; what still runs on it is canceled.
                    message = f"terminateAfter ({limit}) exceeded"
                    tx.attempts.update(
                        pid,
                        attempt.id,
                        status=Status.TIMEDOUT,
                        ended_at=now,
                        lease_expires_at=None,
                        cancel_reason="TerminateAfter",
                        error_id="Timeout",
                        error_message=message,
                    )
                    self.fail(step, inst, message, status=Status.TIMEDOUT)
            else:
                limit = seconds(inst.spec, "attempt_timeout")
                if limit is not None and now >= attempt.started_at + limit:
                    tx.attempts.update(pid, attempt.id, cancel_reason="AttemptTimeout")
                    self.attempt_ended(
                        step,
                        inst,
                        attempt,
                        "TIMEDOUT",
                        error_id="Timeout",
                        error_message=f"attemptTimeout ({limit}) exceeded",
                    )
            inst = tx.instances.get(pid, inst.id)
        if inst.category == "PRECONDITION" and inst.started_at is not None and not inst.terminal:
            limit = seconds(inst.spec, "precondition_timeout")
            if limit is not None and now >= inst.started_at + limit:
                if inst.status is Status.RUNNING:
                    self.cancel(step, inst, "PreconditionTimeout")
                else:
                    self.fail(step, inst, f"precondition did not hold within preconditionTimeout ({limit})")
                inst = tx.instances.get(pid, inst.id)
        if inst.status is Status.WAITING_ON_DEPENDENCIES and inst.run_at <= now:
            self.evaluate(step, [inst])
            inst = tx.instances.get(pid, inst.id)
        current = tx.attempts.find(pid, inst.head_attempt) if inst.head_attempt else None
        due = self.next_due(
            inst, inst.status, now, attempt=current if current and current.status is Status.RUNNING else None
        )
        if due != inst.due_at:
            tx.instances.update(pid, inst.id, due_at=due if due is None or due > now else None)

    # --- SetStatus --------------------------------------------------------------------------

    def rerun(self, step: Step, inst: Instance, *, seen: set[str] | None = None) -> None:
        """SetStatus RERUN: start the instance over (its resource too; with cascade, the consumers
        it made CASCADE_FAILED)."""
        tx, pid = step.tx, step.pipeline.id
        seen = seen if seen is not None else set()
        if inst.id in seen:
            return
        seen.add(inst.id)
        # A rerun takes the active definition (edit, put, activate, rerun); see runtime/rerun.py.
        repin = repinned(inst, step.pipeline.active_version, lambda v: self.active(step, v))
        planned_retries = int(repin.get("spec", inst.spec).get("maximum_retries") or 0)
        queue = repin.pop("queue", inst.queue)
        fresh = tx.instances.update(
            pid,
            inst.id,
            status=Status.WAITING_ON_DEPENDENCIES,
            tries_left=planned_retries,
            ready_at=None,
            reruns=inst.reruns + 1,
            ended_at=None,
            cascade_failed_on=None,
            error_message=None,
            queue=RESOURCE_QUEUE if inst.category == "RESOURCE" else queue,
            due_at=step.now,
            detail={"reason": "rerun"},
            **repin,
        )
        assert fresh is not None
        for pre_id in inst.preconditions:
            pre = tx.instances.find(pid, pre_id)
            if pre is not None and pre.terminal and pre.status is not Status.FINISHED:
                self.rerun(step, pre, seen=seen)
        if inst.resource_id:
            res = tx.instances.find(pid, inst.resource_id)
            if res is not None and res.status in FAILED_LIKE:
                self.rerun(step, res, seen=seen)
        for dep in tx.instances.dependents(pid, [inst.id]):
            if (inst.category == "RESOURCE" and dep.terminal and dep.status is not Status.FINISHED) or (
                dep.status is Status.CASCADE_FAILED and _mode(dep) == "cascade"
            ):
                self.rerun(step, dep, seen=seen)
        self.evaluate(step, [fresh])

    def mark_finished(self, step: Step, inst: Instance) -> None:
        if inst.status is Status.FINISHED:
            return
        if inst.status is Status.RUNNING and inst.head_attempt:
            step.tx.attempts.update(
                step.pipeline.id,
                inst.head_attempt,
                expect_status={Status.RUNNING},
                status=Status.CANCELED,
                ended_at=step.now,
                lease_expires_at=None,
                cancel_reason="MarkFinished",
            )
        self.finish(step, inst, reason="MARK_FINISHED", fire=False)

    # --- actions ----------------------------------------------------------------------------

    def fire(self, step: Step, inst: Instance, trigger: str) -> None:
        """Fire the instance's onSuccess / onFail / onLateAction actions (see firing.py)."""
        from tailrace.runtime.firing import fire_actions

        fire_actions(self, step, inst, trigger)
