"""The in-process event bus: the embedded default (one process; nothing survives a restart).

Positions are the event ids as text. History is bounded by `maxlen`; a subscriber runs on its own
thread, so a slow callback delays only its own subscription.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence

from tailrace.events.abc import Batch, Callback, EventBus, Subscription
from tailrace.events.model import Delivered, Event, EventError

log = logging.getLogger("tailrace.events")


def parse_position(position: str) -> int:
    """The event id of a memory-bus position ("" is 0)."""
    if position == "":
        return 0
    try:
        value = int(position)
    except ValueError:
        value = -1
    if value < 0:
        raise EventError(f"not a position of the in-process bus: {position!r} (expected an event id)")
    return value


class MemoryEventBus(EventBus):
    def __init__(self, *, maxlen: int = 100_000, batch: int = 500) -> None:
        self.maxlen = maxlen
        self.batch = batch
        self._events: deque[Delivered] = deque()
        self._last = 0
        self._trimmed_upto = 0  # the highest event id dropped by trimming
        self._cond = threading.Condition()
        self._subs: list[_MemorySubscription] = []
        self._closed = False

    def publish(self, event_id: int, event: Event) -> None:
        self.publish_many([(event_id, event)])

    def publish_many(self, items: Sequence[tuple[int, Event]]) -> None:
        with self._cond:
            if self._closed:
                raise EventError("the event bus is closed")
            added = False
            for event_id, event in items:
                if event_id <= self._last:
                    continue  # a re-publish (the relay restarted): the bus already holds it
                self._events.append(Delivered(event_id=event_id, position=str(event_id), event=event))
                self._last = event_id
                added = True
            while len(self._events) > self.maxlen:
                self._trimmed_upto = self._events.popleft().event_id
            if added:
                self._cond.notify_all()

    def last_event_id(self) -> int:
        with self._cond:
            return self._last

    def read(self, after: str = "", *, limit: int = 1000) -> Batch:
        start = parse_position(after)
        with self._cond:
            return self._read(start, after, limit)

    def _read(self, start: int, after: str, limit: int) -> Batch:
        # Ids increase along the deque: skip to the first one after `start` by bisection.
        events = self._events
        lo, hi = 0, len(events)
        while lo < hi:
            mid = (lo + hi) // 2
            if events[mid].event_id <= start:
                lo = mid + 1
            else:
                hi = mid
        found = [events[i] for i in range(lo, min(lo + limit, len(events)))]
        return Batch(
            events=found,
            position=found[-1].position if found else after,
            trimmed=after != "" and start < self._trimmed_upto,
        )

    def subscribe(self, callback: Callback, *, after: str = "") -> Subscription:
        parse_position(after)
        sub = _MemorySubscription(self, callback, after)
        with self._cond:
            if self._closed:
                raise EventError("the event bus is closed")
            self._subs.append(sub)
        sub.thread.start()
        return sub

    def close(self) -> None:
        with self._cond:
            self._closed = True
            subs = list(self._subs)
            self._cond.notify_all()
        for sub in subs:
            sub.close()


class _MemorySubscription(Subscription):
    def __init__(self, bus: MemoryEventBus, callback: Callback, after: str) -> None:
        self.bus = bus
        self.callback = callback
        self.position = after
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="tailrace-bus-memory", daemon=True)

    def _run(self) -> None:
        bus = self.bus
        while True:
            with bus._cond:
                while True:
                    if self.closed or bus._closed:
                        return
                    batch = bus._read(parse_position(self.position), self.position, bus.batch)
                    if batch.events:
                        break
                    bus._cond.wait()
            try:
                self.callback(batch.events)
            except Exception:
                log.exception("event bus subscriber failed on events up to %s", batch.position)
            self.position = batch.position

    def close(self) -> None:
        with self.bus._cond:
            self.closed = True
            self.bus._cond.notify_all()
            if self in self.bus._subs:
                self.bus._subs.remove(self)
        if threading.current_thread() is not self.thread and self.thread.is_alive():
            self.thread.join()
