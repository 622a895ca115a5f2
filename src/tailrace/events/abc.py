"""The event bus port (layer 3). Small on purpose: publish, read a range, subscribe from a position.

Contract (tests/events/ holds the suite every backend passes):

- `publish(event_id, event)` appends one event. Publishing an `event_id` at or below the highest
  one already published is a no-op (the outbox relay may re-publish after a crash between publish
  and saving its cursor), so the bus holds each event once, in event-id order.
- Positions are opaque strings; `""` means "from the beginning of what the bus keeps". A position
  from `read` or a `Delivered` is valid for resuming later on any process on the same bus.
- `read(after, limit)` returns events strictly after the position, oldest first.
- `subscribe(after, callback)` delivers everything after `after` and then each new event, in
  order, with no gap and no repeat within one subscription, across reconnects of the backend.
  It returns a `Subscription` whose `close()` stops delivery. Callbacks run on a bus thread; a
  callback that raises is logged and does not stop the subscription.
- Old events may be trimmed (a bounded history); a consumer that fell behind the trim point
  resumes at the oldest event kept, and `read` reports that through `Batch.trimmed`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tailrace.events.model import Delivered, Event

Callback = Callable[[Sequence[Delivered]], None]


@dataclass(frozen=True, kw_only=True)
class Batch:
    events: Sequence[Delivered]
    position: str
    """Where the next read continues (the last event's position, or `after` when empty)."""
    trimmed: bool = False
    """True when events after `after` had already been trimmed away."""


class Subscription(ABC):
    @abstractmethod
    def close(self) -> None:
        """Stop delivery; returns once no callback of this subscription is running."""


class EventBus(ABC):
    @abstractmethod
    def publish(self, event_id: int, event: Event) -> None:
        """Append one event (a no-op when event_id is not above the last published)."""

    def publish_many(self, items: Sequence[tuple[int, Event]]) -> None:
        """Publish several events in event-id order (backends may do it in one round trip)."""
        for event_id, event in items:
            self.publish(event_id, event)

    @abstractmethod
    def last_event_id(self) -> int:
        """The highest event id published (0 when none): where the relay resumes."""

    def position_of(self, event_id: int) -> str:
        """The position right after which `event_id`'s successors come (to resume by event id)."""
        return str(event_id) if event_id > 0 else ""

    @abstractmethod
    def read(self, after: str = "", *, limit: int = 1000) -> Batch:
        """Events after the position, oldest first, at most `limit`."""

    @abstractmethod
    def subscribe(self, callback: Callback, *, after: str = "") -> Subscription:
        """Deliver events after `after`, then each new one, in order (see the module contract)."""

    @abstractmethod
    def close(self) -> None:
        """Close every subscription and release connections."""
