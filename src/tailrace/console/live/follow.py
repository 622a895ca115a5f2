"""Where a console process hears events: ONE follower per process, whatever the number of pages.

- With an event bus (Redis in a multi-process deployment), one bus subscription: every console
  process sees every event committed anywhere, through the stream, on one connection.
- Without one (the embedded single-process default), the store's outbox itself: woken by the
  commit hook of this process and polled for commits of others.

Both hand on (event id, event) pairs in id order; the hub drops any id it has already seen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from tailrace.events.abc import EventBus, Subscription
from tailrace.events.model import Delivered, Event
from tailrace.state.abc import StateStore, StoredEvent

log = logging.getLogger("tailrace.console.live")

Sink = Callable[[Sequence[tuple[int, Event]]], None]


class Follower(Protocol):
    def head(self) -> int:
        """The id of the last event already committed (where following starts)."""

    def start(self, after: int, sink: Sink) -> None: ...

    def close(self) -> None: ...


class BusFollower:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._sub: Subscription | None = None

    def head(self) -> int:
        return self.bus.last_event_id()

    def start(self, after: int, sink: Sink) -> None:
        def deliver(batch: Sequence[Delivered]) -> None:
            sink([(d.event_id, d.event) for d in batch])

        self._sub = self.bus.subscribe(deliver, after=self.bus.position_of(after))

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()


class StoreFollower:
    """Reads the outbox after the last id seen, on each local commit and every `poll` seconds."""

    def __init__(self, store: StateStore, *, poll: float = 0.5, batch: int = 500) -> None:
        self.store = store
        self.poll = poll
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def head(self) -> int:
        return self.store.last_event_id()

    def start(self, after: int, sink: Sink) -> None:
        self._unsubscribe = self.store.subscribe(self._on_commit)
        self._thread = threading.Thread(
            target=self._run, args=(after, sink), name="tailrace-console-follow", daemon=True
        )
        self._thread.start()

    def _on_commit(self, records: Sequence[StoredEvent]) -> None:
        self._wake.set()

    def _run(self, after: int, sink: Sink) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while True:
                    records = self.store.events_after(after, limit=self.batch)
                    if records:
                        sink([(r.id, r.event) for r in records])
                        after = records[-1].id
                    if len(records) < self.batch:
                        break
            except Exception:  # the database is away: keep the position, try again
                log.exception("console live feed: reading the outbox failed; retrying")
                self._stop.wait(2.0)
            self._wake.wait(self.poll)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
