"""Typed events: frozen, keyword-only records, each with a stable type name and a schema version.

Every event is committed to the state store's outbox in the transaction that caused it, gets a
cursor id there (increasing in commit order), and is relayed to the event bus after the commit.
Consumers match on the class (`isinstance(e, InstanceStatusChanged)`), never on name prefixes.

Serialisation is by name: `encode(event)` gives (type, version, payload); `decode(type, version,
payload)` rebuilds the record. A payload of a newer version than this code knows keeps the fields
it knows (unknown ones are dropped); a type this code does not know decodes to `UnknownEvent`,
so an old consumer never fails on a new producer's history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from tailrace.errors import TailraceError


class EventError(TailraceError):
    """An event could not be encoded or decoded."""


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


# Field names per class, computed once: events are built and encoded on every state change.
_MAPPING_FIELDS: dict[type, tuple[str, ...]] = {}
_PAYLOAD_FIELDS: dict[type, tuple[str, ...]] = {}


def _mapping_fields(cls: type) -> tuple[str, ...]:
    found = _MAPPING_FIELDS.get(cls)
    if found is None:
        kinds = ("Mapping[str, Any]", "Mapping[str, str]")
        found = _MAPPING_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.type in kinds)
    return found


def _payload_fields(cls: type) -> tuple[str, ...]:
    found = _PAYLOAD_FIELDS.get(cls)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _BASE_FIELDS)
        found = _PAYLOAD_FIELDS[cls] = names
    return found


@dataclass(frozen=True, kw_only=True)
class Event:
    """The base of every event. `at` is UTC-aware; `owner` is the key holder the event belongs to
    (None for service-wide events), so consumers can show each owner only their own."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    at: datetime
    owner: str | None = None
    pipeline_id: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise EventError(f"{type(self).__name__}.at must be timezone-aware; got {self.at!r}")
        for name in _mapping_fields(type(self)):
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))


# --- pipelines ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PipelineCreated(Event):
    TYPE: ClassVar[str] = "pipeline.created"
    name: str = ""


@dataclass(frozen=True, kw_only=True)
class PipelineDeleted(Event):
    TYPE: ClassVar[str] = "pipeline.deleted"
    name: str = ""


@dataclass(frozen=True, kw_only=True)
class DefinitionPut(Event):
    TYPE: ClassVar[str] = "pipeline.definition"
    version: int = 0
    warnings: int = 0


@dataclass(frozen=True, kw_only=True)
class PipelineActivated(Event):
    TYPE: ClassVar[str] = "pipeline.activated"
    version: int = 0
    start: str | None = None
    """The activation's startTimestamp (ISO 8601), when one was given."""


@dataclass(frozen=True, kw_only=True)
class PipelineStateChanged(Event):
    TYPE: ClassVar[str] = "pipeline.state"
    old: str = ""
    new: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


# --- components, instances, attempts ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StatusChanged(Event):
    """Base of the status changes of objects inside a pipeline (statuses are their text)."""

    object_id: str = ""
    old: str = ""
    new: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ComponentStatusChanged(StatusChanged):
    TYPE: ClassVar[str] = "component.status"


@dataclass(frozen=True, kw_only=True)
class InstanceStatusChanged(StatusChanged):
    TYPE: ClassVar[str] = "instance.status"
    component: str = ""
    """The component the instance is of."""


@dataclass(frozen=True, kw_only=True)
class AttemptStatusChanged(StatusChanged):
    TYPE: ClassVar[str] = "attempt.status"
    instance: str = ""
    """The instance the attempt is of."""


# --- actions (SnsAlarm, Terminate) --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ActionFired(Event):
    TYPE: ClassVar[str] = "action.fired"
    action_id: str = ""
    action_type: str = ""
    trigger: str = ""
    """onFail, onSuccess or onLateAction."""
    node: str = ""
    """The instance the action fired for."""
    subject: str | None = None
    message: str | None = None
    topic_arn: str | None = None


@dataclass(frozen=True, kw_only=True)
class ActionFailed(Event):
    TYPE: ClassVar[str] = "action.failed"
    action_id: str = ""
    trigger: str = ""
    node: str = ""
    error: str = ""


# --- notification, alarms, operators (the edges fill these) ------------------------------------


@dataclass(frozen=True, kw_only=True)
class AlarmStateChanged(Event):
    TYPE: ClassVar[str] = "alarm.state"
    alarm_name: str = ""
    alarm_arn: str = ""
    old: str = ""
    new: str = ""
    """OK, ALARM or INSUFFICIENT_DATA."""
    reason: str = ""
    region: str = ""


@dataclass(frozen=True, kw_only=True)
class MessagePublished(Event):
    TYPE: ClassVar[str] = "message.published"
    topic_arn: str = ""
    message_id: str = ""
    subject: str | None = None
    message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Broadcast(Event):
    """An operator's message to every open console (owner None: everyone sees it)."""

    TYPE: ClassVar[str] = "operator.broadcast"
    text: str = ""
    sender: str = ""


@dataclass(frozen=True, kw_only=True)
class ConsoleNotification(Event):
    """A topic's message delivered to a `console` subscription: shown live on the owner's consoles."""

    TYPE: ClassVar[str] = "notify.console"
    topic_arn: str = ""
    subscription_arn: str = ""
    message_id: str = ""
    subject: str | None = None
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class LifecycleRunFinished(Event):
    TYPE: ClassVar[str] = "lifecycle.run"
    transitioned: int = 0
    expired: int = 0
    bytes_moved: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event whose type this code does not know (written by a newer version)."""

    TYPE: ClassVar[str] = "unknown"
    type_name: str = ""
    version: int = 0
    payload: Mapping[str, Any] = field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        PipelineCreated,
        PipelineDeleted,
        DefinitionPut,
        PipelineActivated,
        PipelineStateChanged,
        ComponentStatusChanged,
        InstanceStatusChanged,
        AttemptStatusChanged,
        ActionFired,
        ActionFailed,
        AlarmStateChanged,
        MessagePublished,
        Broadcast,
        ConsoleNotification,
        LifecycleRunFinished,
    )
}
"""Every event class by its stable type name."""

_BASE_FIELDS = frozenset({"at", "owner", "pipeline_id"})
E = TypeVar("E", bound=Event)


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def encode(event: Event) -> tuple[str, int, dict[str, Any]]:
    """(type name, schema version, JSON-ready payload) of an event; `at`, `owner` and
    `pipeline_id` are carried beside the payload, not in it."""
    if isinstance(event, UnknownEvent):
        return event.type_name, event.version, dict(_plain(event.payload))
    payload = {name: _plain(getattr(event, name)) for name in _payload_fields(type(event))}
    return event.TYPE, event.VERSION, payload


def decode(
    type_name: str,
    version: int,
    payload: Mapping[str, Any],
    *,
    at: datetime,
    owner: str | None = None,
    pipeline_id: str | None = None,
) -> Event:
    """Rebuild an event from what `encode` gave. Unknown types give UnknownEvent; unknown fields
    (a newer version's) are dropped; missing ones take their defaults."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        return UnknownEvent(
            at=at, owner=owner, pipeline_id=pipeline_id, type_name=type_name, version=version, payload=payload
        )
    known = _payload_fields(cls)
    kwargs = {k: v for k, v in payload.items() if k in known}
    try:
        return cls(at=at, owner=owner, pipeline_id=pipeline_id, **kwargs)
    except TypeError as exc:
        raise EventError(f"event {type_name!r} v{version}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """An event as a consumer receives it: its outbox id (unique, increasing in commit order; the
    key consumers de-duplicate on) and its position on the bus (opaque, to resume from)."""

    event_id: int
    position: str
    event: Event


def to_dict(event: Event) -> dict[str, Any]:
    """The event as one JSON-ready object: type, version, at, owner, pipelineId, payload (the form
    the Redis bus stores and `tailrace events --output json` prints)."""
    type_name, version, payload = encode(event)
    return {
        "type": type_name,
        "version": version,
        "at": event.at.isoformat(),
        "owner": event.owner,
        "pipelineId": event.pipeline_id,
        "payload": payload,
    }


def from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from `to_dict`'s form. :raises EventError: if it is not that form."""
    try:
        at = datetime.fromisoformat(str(data["at"]))
        return decode(
            str(data["type"]),
            int(data.get("version") or 1),
            data.get("payload") or {},
            at=at,
            owner=data.get("owner"),
            pipeline_id=data.get("pipelineId"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventError(f"not an encoded event: {exc}") from None
