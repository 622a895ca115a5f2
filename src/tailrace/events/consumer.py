"""A durable consumer: follows the bus under a name, with its cursor saved in the state store.

After a restart it resumes from the saved position, and it drops any event whose id is not above
the last one it handled (a bus or relay may deliver an event again). The handler runs inside the
store transaction that moves the cursor, so what it writes to the store happens exactly once;
effects outside the store (an HTTP call) happen at least once.

A handler that raises is retried with a growing pause; after `max_attempts` the event is logged
and skipped, so one bad event cannot stop a long-running consumer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from tailrace.clock import Clock, SystemClock
from tailrace.events.abc import EventBus, Subscription
from tailrace.events.model import Delivered
from tailrace.state.abc import StateStore, Transaction

log = logging.getLogger("tailrace.events")

Handler = Callable[[Delivered, Transaction], None]


class DurableConsumer:
    def __init__(
        self,
        name: str,
        *,
        store: StateStore,
        bus: EventBus,
        handler: Handler,
        clock: Clock | None = None,
        max_attempts: int = 5,
        retry_pause: float = 0.5,
    ) -> None:
        self.name = name
        self.store = store
        self.bus = bus
        self.handler = handler
        self.clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.retry_pause = retry_pause
        self.last_event_id = 0
        self.position = ""
        self.skipped = 0
        self.duplicates = 0
        self._subscription: Subscription | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        with self.store.transaction(readonly=True) as tx:
            cursor = tx.cursors.find(self.name)
        if cursor is not None:
            self.last_event_id, self.position = cursor.event_id, cursor.position
        self._subscription = self.bus.subscribe(self.deliver, after=self.position)

    def deliver(self, batch: Sequence[Delivered]) -> None:
        """Handle one batch from the bus (the subscription's callback; public for tests). Each
        event gets its own transaction, so a failing one neither undoes nor repeats the others."""
        for delivered in batch:
            if self._closed.is_set():
                return
            if delivered.event_id <= self.last_event_id:
                self.duplicates += 1
                continue
            self._handle(delivered)

    def _handle(self, delivered: Delivered) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.store.transaction() as tx:
                    self.handler(delivered, tx)
                    tx.cursors.save(
                        self.name,
                        event_id=delivered.event_id,
                        position=delivered.position,
                        at=self.clock.now(),
                    )
                break
            except Exception:
                if attempt == self.max_attempts:
                    log.exception(
                        "consumer %s: event %d failed %d times; skipped",
                        self.name,
                        delivered.event_id,
                        attempt,
                    )
                    self.skipped += 1
                    self._save_only(delivered)
                    break
                log.warning(
                    "consumer %s: event %d failed; retrying", self.name, delivered.event_id, exc_info=True
                )
                if self._closed.wait(self.retry_pause * 2 ** (attempt - 1)):
                    return
        self.last_event_id, self.position = delivered.event_id, delivered.position

    def _save_only(self, delivered: Delivered) -> None:
        try:
            with self.store.transaction() as tx:
                tx.cursors.save(
                    self.name, event_id=delivered.event_id, position=delivered.position, at=self.clock.now()
                )
        except Exception:
            log.exception("consumer %s: could not save its cursor", self.name)

    def close(self) -> None:
        self._closed.set()
        if self._subscription is not None:
            self._subscription.close()
