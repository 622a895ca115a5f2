"""The one place notify records its typed events (AlarmStateChanged, MessagePublished).

`store_sink` writes them to the state store's outbox (which relays them to the event bus).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tailrace.events.model import Event

Sink = Callable[[Event], None]


def store_sink(store: Any) -> Sink:
    """Events into the state store's outbox (one small transaction each, after notify's commit)."""

    def record(event: Event) -> None:
        with store.transaction() as tx:
            tx.events.append(event)

    return record
