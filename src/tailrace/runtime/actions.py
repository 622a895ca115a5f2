"""Actions fired by instances (onSuccess, onFail, onLateAction): SnsAlarm and Terminate.

Here an action is evaluated against the triggering instance and returned as a record; the
caller records it as an event and writes it to the log (delivery to topics is notify/'s job).
"""

from __future__ import annotations

from dataclasses import dataclass

from tailrace.definition import ResolvedDefinition
from tailrace.errors import LocatedError, Location
from tailrace.expressions import ExpressionError, Scope, render
from tailrace.plan import ScopeBuilder


@dataclass(frozen=True, kw_only=True)
class FiredAction:
    action_id: str
    type: str
    trigger: str
    """onSuccess, onFail or onLateAction."""
    node: str
    """The instance that fired it."""
    subject: str | None = None
    message: str | None = None
    topic_arn: str | None = None

    def describe(self) -> str:
        if self.type == "SnsAlarm":
            return f"{self.trigger} {self.type} '{self.action_id}' -> {self.topic_arn}: {self.subject} | {self.message}"
        return f"{self.trigger} {self.type} '{self.action_id}' for {self.node}"


def _text(resolved: ResolvedDefinition, action_id: str, field: str, scope: Scope) -> str | None:
    raw = resolved.objects[action_id].string(field)
    if raw is None:
        return None
    try:
        value = render(raw, scope)
    except ExpressionError as exc:
        raise exc.at(action_id, field)
    return value if isinstance(value, str) else "\n".join(value)


def fire_action(
    scopes: ScopeBuilder, action_id: str, *, trigger: str, node_id: str, node_scope: Scope
) -> FiredAction:
    resolved = scopes.resolved
    action = resolved.get(action_id)
    if action is None:
        raise LocatedError(f"action '{action_id}' does not exist", Location(object_id=node_id, field=trigger))
    scope = scopes.action_scope(action_id, node_scope)
    if action.type == "SnsAlarm":
        return FiredAction(
            action_id=action_id,
            type="SnsAlarm",
            trigger=trigger,
            node=node_id,
            subject=_text(resolved, action_id, "subject", scope),
            message=_text(resolved, action_id, "message", scope),
            topic_arn=_text(resolved, action_id, "topicArn", scope),
        )
    return FiredAction(action_id=action_id, type=action.type or "Terminate", trigger=trigger, node=node_id)
