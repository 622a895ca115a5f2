"""The one place notify records its typed events (AlarmStateChanged, MessagePublished).

Today the state store's outbox takes (type, payload) strings; `store_sink` writes the typed
event's encoded form there. When the outbox takes typed events, only this function changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tailrace.events.model import Event, encode

Sink = Callable[[Event], None]


def store_sink(store: Any) -> Sink:
    """Events into the state store's outbox (one small transaction each, after notify's commit)."""

    def record(event: Event) -> None:
        type_name, version, payload = encode(event)
        with store.transaction() as tx:
            tx.events.append(
                type_name,
                at=event.at,
                pipeline_id=event.pipeline_id,
                object_id=payload.get("alarm_name") or payload.get("message_id"),
                payload={**payload, "owner": event.owner, "version": version},
            )

    return record
