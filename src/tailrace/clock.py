"""Time is passed in, never read from a global: tests use FrozenClock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a frozen clock advances instead of blocking."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FrozenClock:
    """A clock that moves only when told to (or when something sleeps on it)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when if when.tzinfo else when.replace(tzinfo=UTC)

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))


class FastForwardClock(FrozenClock):
    """A frozen clock that a driver jumps forward to the next wakeup when nothing is runnable
    (`tailrace run`): time passes only between steps, never backwards."""

    def jump_to(self, when: datetime) -> datetime:
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        with self._lock:
            self._now = max(self._now, when.astimezone(UTC))
            return self._now


def utc(dt: datetime) -> datetime:
    """Make a datetime UTC-aware (naive values are taken as UTC, as the service does)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_dp(dt: datetime) -> str:
    """Data Pipeline's date-time text: YYYY-MM-DDTHH:MM:SS in UTC."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S")


def parse_dp(text: str) -> datetime:
    """Parse YYYY-MM-DDTHH:MM:SS (optionally with Z or an offset) into UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return utc(dt)
