"""The outbox relay: publishes what the state store committed to the event bus, in commit order.

The store's `tr_events` is the outbox: a transaction's events are rows committed with it, with
ids that increase in commit order. The relay reads the rows after `bus.last_event_id()` and
publishes them. Nothing else is remembered, so:

- a rolled-back transaction publishes nothing (its rows never existed);
- a relay that dies between a commit and its publish loses nothing: the next one starts from
  the bus's last id and publishes the rest;
- a relay that dies after publishing but before anything else re-publishes nothing: publish is a
  no-op for ids the bus already holds, which also makes two relays at once harmless.

It wakes on the commit hook of its own process and polls for commits of other processes. One
relay per database is enough; a lease (`tx.leases`) keeps the others idle, to save work only.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from tailrace.clock import Clock, SystemClock
from tailrace.events.abc import EventBus
from tailrace.state.abc import StateStore, StoredEvent

log = logging.getLogger("tailrace.events")

LEASE = "tailrace.events.relay"


class OutboxRelay:
    def __init__(
        self,
        store: StateStore,
        bus: EventBus,
        *,
        clock: Clock | None = None,
        poll_interval: float = 0.5,
        batch: int = 500,
        lease_seconds: float = 15.0,
        use_lease: bool = True,
        replay: int | None = None,
        holder: str | None = None,
    ) -> None:
        """`replay` bounds what a bus that holds nothing yet receives of the history: the last
        `replay` events (0 for none: the in-process bus, new at every start); None for all."""
        self.store = store
        self.bus = bus
        self.clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.use_lease = use_lease
        self.replay = replay
        self.holder = holder or f"{socket.gethostname()}/{os.getpid()}/{id(self):x}"
        self.published = 0
        self._floor: int | None = None
        self._held_until: datetime | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: object = None

    def _holds_lease(self) -> bool:
        if not self.use_lease:
            return True
        now = self.clock.now()
        if self._held_until is not None and now < self._held_until - self.lease * 2 / 3:
            return True  # renewed recently: spare the database a write per wake-up
        with self.store.transaction() as tx:
            held = tx.leases.acquire(LEASE, self.holder, now=now, until=now + self.lease)
        self._held_until = now + self.lease if held else None
        return held

    def run_once(self) -> int:
        """Publish every committed event the bus lacks; returns how many were published."""
        if not self._holds_lease():
            return 0
        last = self.bus.last_event_id()
        if self._floor is None:
            self._set_floor(last)
        after = max(last, self._floor or 0)
        total = 0
        while not self._stop.is_set():
            records = self.store.events_after(after, limit=self.batch)
            if not records:
                break
            self.bus.publish_many([(r.id, r.event) for r in records])
            after = records[-1].id
            total += len(records)
            if len(records) < self.batch:
                break
        self.published += total
        return total

    def _set_floor(self, last: int) -> None:
        """Where an empty bus starts (the first time this relay sees the bus)."""
        end = self.store.last_event_id() if last == 0 and self.replay is not None else 0
        self._floor = max(0, end - (self.replay or 0))

    def _on_commit(self, records: Sequence[StoredEvent]) -> None:
        self._wake.set()

    def start(self) -> None:
        try:  # now, so that what commits after start() is published even on an empty bus
            self._set_floor(self.bus.last_event_id())
        except Exception:  # the bus is away: the first successful run decides
            log.warning("event relay: the bus is not reachable yet", exc_info=True)
        self._unsubscribe = self.store.subscribe(self._on_commit)
        self._thread = threading.Thread(target=self._run, name="tailrace-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = self.poll_interval
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
                backoff = self.poll_interval
            except Exception:  # the store or the bus is away: retry, never die
                log.exception("event relay failed; retrying in %.1fs", backoff)
                backoff = min(backoff * 2, 30.0)
            self._wake.wait(backoff)

    def stop(self) -> None:
        """Stop; publishes what is committed by now first (best effort), then gives the lease up."""
        if callable(self._unsubscribe):
            self._unsubscribe()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._stop.clear()
        try:
            self.run_once()
        except Exception:
            log.warning("event relay: could not publish the last events before stopping", exc_info=True)
        finally:
            self._stop.set()
        if self.use_lease:
            try:
                with self.store.transaction() as tx:
                    tx.leases.release(LEASE, self.holder)
            except Exception:
                log.warning("event relay: could not release its lease", exc_info=True)


def start_relay(services: Any) -> Callable[[], None]:
    """Start a relay from `services.state`'s outbox to `services.event_bus` in this process;
    returns its stop. (Process assembly: `tailrace up` calls it when the bus is Redis.)"""
    s = services.settings
    # A new Redis stream gets as much history as it keeps; the in-process bus starts empty.
    relay = OutboxRelay(services.state, services.event_bus, replay=s.redis_maxlen if s.redis_url else 0)
    relay.start()
    return relay.stop
