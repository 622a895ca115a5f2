"""Firing an instance's actions (onSuccess, onFail, onLateAction).

Each action is evaluated against the triggering instance (`#{node.@scheduledStartTime}`) by
tailrace.runtime.actions, recorded as an 'action.fired' event in the transaction that changed
the instance, written to the service log and to the instance's actions.log (next to its
attempts' logs). Delivery to a topic is the notifier's job. Terminate cancels the late work.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailrace.clock import format_dp
from tailrace.errors import TailraceError
from tailrace.events.model import ActionFailed, ActionFired
from tailrace.ids import path_segment
from tailrace.runtime.actions import fire_action
from tailrace.runtime.activation import planned_from_spec
from tailrace.runtime.logs import log_storage
from tailrace.state import Instance
from tailrace.storage import Storage

if TYPE_CHECKING:
    from tailrace.runtime.transitions import Step, Transitions

log = logging.getLogger("tailrace.service")
TRIGGERS = {"onSuccess": "on_success", "onFail": "on_fail", "onLateAction": "on_late_action"}


def fire_actions(transitions: Transitions, step: Step, inst: Instance, trigger: str) -> None:
    action_ids = list(inst.spec.get(TRIGGERS[trigger]) or ())
    if not action_ids:
        return
    tx, pid = step.tx, step.pipeline.id
    active = transitions.active(step, inst.definition_version)
    extra: dict[str, Any] = {"@status": str(inst.status)}
    if inst.started_at:
        extra["@actualStartTime"] = inst.started_at
    if inst.ended_at:
        extra["@actualEndTime"] = inst.ended_at
    node_scope = active.scopes.instance_scope(planned_from_spec(inst.spec), extra=extra)
    for action_id in action_ids:
        try:
            fired = fire_action(
                active.scopes, action_id, trigger=trigger, node_id=inst.id, node_scope=node_scope
            )
        except TailraceError as exc:
            tx.events.append(
                ActionFailed(
                    at=step.now,
                    owner=step.pipeline.owner,
                    pipeline_id=pid,
                    action_id=action_id,
                    trigger=trigger,
                    node=inst.id,
                    error=str(exc),
                )
            )
            log.warning(
                "%s %s: %s action '%s' could not be evaluated: %s", pid, inst.id, trigger, action_id, exc
            )
            continue
        problem = _topic_problem(transitions, step.pipeline.owner, fired)
        if problem is not None:
            # Recorded where the owner looks (the actions.log next to the attempts' logs) and as
            # action.failed; nothing is published, the instance's own outcome stands.
            tx.events.append(
                ActionFailed(
                    at=step.now,
                    owner=step.pipeline.owner,
                    pipeline_id=pid,
                    action_id=action_id,
                    trigger=trigger,
                    node=inst.id,
                    error=problem,
                )
            )
            line = f"{pid} {inst.id}: ERROR {trigger} SnsAlarm '{action_id}' not published: {problem}"
            step.notes.append(line)
            tx.after_commit(functools.partial(log.warning, "%s", line))
            _log_action(transitions, step, active, inst, f"ERROR {trigger} SnsAlarm '{action_id}': {problem}")
            continue
        tx.events.append(
            ActionFired(
                at=step.now,
                owner=step.pipeline.owner,
                pipeline_id=pid,
                action_id=fired.action_id,
                action_type=fired.type,
                trigger=trigger,
                node=inst.id,
                subject=fired.subject,
                message=fired.message,
                topic_arn=fired.topic_arn,
            )
        )
        line = f"{pid} {inst.id}: {fired.describe()}"
        step.notes.append(line)
        tx.after_commit(functools.partial(log.info, "%s", line))
        _log_action(transitions, step, active, inst, fired.describe())
        if fired.type == "Terminate" and trigger == "onLateAction" and not inst.terminal:
            transitions.cancel(step, tx.instances.get(pid, inst.id), f"Terminate action '{action_id}' (late)")


def _topic_problem(transitions: Transitions, owner: str, fired: Any) -> str | None:
    if fired.type != "SnsAlarm" or transitions.topic_check is None:
        return None
    if not fired.topic_arn:
        return "topicArn is empty"
    try:
        return transitions.topic_check(owner, fired.topic_arn)
    except Exception as exc:  # the topics' database may be away: the relay still tries later
        log.warning("could not check topic %r: %s", fired.topic_arn, exc)
        return None


def _log_action(transitions: Transitions, step: Step, active: Any, inst: Instance, text: str) -> None:
    """One line in the instance's actions.log, after the commit."""
    storage, home = transitions.storage, transitions.home
    if storage is None or home is None:
        return
    pid = step.pipeline.id
    uri = actions_log_uri(active.log_root(inst.component_id), home, pid, inst)
    entry = f"{format_dp(step.now)} {text}\n"
    storage = log_storage(storage, uri, home, step.pipeline.owner)
    step.tx.after_commit(functools.partial(append_log, storage, uri, entry))


def append_log(storage: Storage, uri: str, text: str) -> None:
    try:
        old = storage.read_bytes(uri) if storage.exists(uri) else b""
        storage.write_bytes(uri, old + text.encode("utf-8"))
    except TailraceError as exc:  # the event is recorded; a log that cannot be written is not fatal
        log.warning("could not write %s: %s", uri, exc)


def actions_log_uri(log_root: str | None, home: Path, pipeline_id: str, inst: Instance) -> str:
    """`<pipelineLogUri or <home>/logs>/<pipelineId>/<component>/<instance>/actions.log`: the actions
    an instance fired, next to its attempts' logs."""
    base = log_root.rstrip("/") if log_root else (home / "logs").resolve().as_posix()
    return f"{base}/{pipeline_id}/{path_segment(inst.component_id)}/{path_segment(inst.id)}/actions.log"
