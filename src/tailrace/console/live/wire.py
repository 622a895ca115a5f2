"""What the browser receives: each event as one JSON object and one Server-Sent Events frame.

A frame is encoded once per event and shared by every connection that may see it (the fan-out
copies references, not bytes). Long untrusted strings are cut so that one 256 KiB SNS message
does not become 256 KiB per open page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tailrace.events.model import (
    ActionFired,
    AlarmStateChanged,
    Broadcast,
    ConsoleNotification,
    Event,
    LifecycleRunFinished,
    UnknownEvent,
    encode,
)

MAX_FIELD = 4096
"""Characters of one string field sent to the browser (the rest is replaced by an ellipsis)."""

# Events the console has no use for: not pushed, not kept.
_SKIPPED: tuple[type[Event], ...] = (UnknownEvent, LifecycleRunFinished)


class ViewerLike(Protocol):
    """The console's logged-in user, as the live feed needs it (tailrace.console.auth.Viewer)."""

    @property
    def name(self) -> str: ...

    @property
    def owner(self) -> str | None:
        """The owner whose events the viewer sees; None for an operator who sees every owner's."""

    @property
    def can_write(self) -> bool: ...


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD else value[:MAX_FIELD] + "…"
    if isinstance(value, Mapping):
        return {str(k): _cut(v) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_cut(v) for v in value[:100]]
    return value


def is_alarm(event: Event) -> bool:
    """True for what raises the banner and the siren: an alarm going to ALARM, an SnsAlarm action
    fired by a pipeline, a topic message delivered to a console subscription."""
    if isinstance(event, AlarmStateChanged):
        return event.new == "ALARM"
    if isinstance(event, ActionFired):
        return event.action_type == "SnsAlarm"
    return isinstance(event, ConsoleNotification)


def is_kept(event: Event) -> bool:
    """True for what the history keeps for pages that open later: alarms (any transition, so a
    page sees that one went back to OK) and broadcasts."""
    return isinstance(event, AlarmStateChanged | Broadcast | ConsoleNotification) or is_alarm(event)


@dataclass(frozen=True, slots=True)
class Frame:
    """One event ready to send: who may see it, and its bytes on the wire."""

    event_id: int
    owner: str | None
    everyone: bool
    """A broadcast without owner: every viewer sees it."""
    kept: bool
    data: dict[str, Any]
    sse: bytes

    def visible_to(self, owner: str | None) -> bool:
        """Owner None (an operator) sees everything; others their own and broadcasts to everyone."""
        return self.everyone or owner is None or self.owner == owner


def to_json(event_id: int, event: Event) -> dict[str, Any]:
    """The event as the page's `tr:event` detail: type, id, at, owner, pipelineId, its fields."""
    type_name, _version, payload = encode(event)
    data: dict[str, Any] = {str(k): _cut(v) for k, v in payload.items()}
    data.update(
        type=type_name,
        id=event_id,
        at=event.at.isoformat(),
        owner=event.owner,
        pipelineId=event.pipeline_id,
        alarm=is_alarm(event),
    )
    return data


def frame(event_id: int, event: Event) -> Frame | None:
    """The frame of one event, or None for events the console does not show."""
    if isinstance(event, _SKIPPED):
        return None
    data = to_json(event_id, event)
    return Frame(
        event_id=event_id,
        owner=event.owner,
        everyone=isinstance(event, Broadcast) and event.owner is None,
        kept=is_kept(event),
        data=data,
        sse=sse(data, event_id=event_id),
    )


def sse(data: Mapping[str, Any], *, event_id: int | None = None, name: str | None = None) -> bytes:
    """One SSE message. JSON has no raw newline, so `data` is one line and cannot inject fields."""
    head = b""
    if name is not None:
        head += b"event: " + name.encode() + b"\n"
    if event_id is not None:
        head += b"id: " + str(event_id).encode() + b"\n"
    return head + b"data: " + orjson.dumps(data) + b"\n\n"
