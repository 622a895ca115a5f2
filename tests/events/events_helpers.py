"""Helpers of the event tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tailrace.events.model import Broadcast, Event, InstanceStatusChanged

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def until(what: str, fn: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll fn until truthy: waiting for another thread or process to act, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def events(n: int, *, start: int = 1) -> list[tuple[int, Event]]:
    """(event id, event) pairs of alternating kinds, with payloads that tell them apart."""
    out: list[tuple[int, Event]] = []
    for i in range(start, start + n):
        at = T0 + timedelta(seconds=i, microseconds=i)
        if i % 2:
            e: Event = InstanceStatusChanged(
                at=at,
                owner="alice",
                pipeline_id="df-1",
                object_id=f"@A_{i}",
                component="A",
                old="RUNNING",
                new="FINISHED",
                detail={"n": i, "nested": {"k": [1, 2]}},
            )
        else:
            e = Broadcast(at=at, text=f"message {i}", sender="ops")
        out.append((i, e))
    return out


class Collector:
    """A subscription callback that keeps what it got, thread-safely."""

    def __init__(self) -> None:
        self.got: list = []
        self.lock = threading.Lock()

    def __call__(self, batch) -> None:
        with self.lock:
            self.got.extend(batch)

    @property
    def ids(self) -> list[int]:
        with self.lock:
            return [d.event_id for d in self.got]
