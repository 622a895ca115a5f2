"""Progress of long work on stderr: a counter with rate and ETA.

On a terminal it is one line rewritten in place (at most every 0.2 s); otherwise (a pipe, a log
file, CI) a plain line every `interval` seconds and one at the end, so a 60-period backfill gives
a handful of lines rather than one per step. Other messages go through `note`, which keeps them
from being overwritten by the counter.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(
        self,
        what: str,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.clock = clock
        self.total = 0
        self.done = 0
        self.current = ""
        self._began = clock()
        self._shown_at: float | None = None
        self._width = 0
        self._last = ""
        self._counted: tuple[int, int] | None = None

    def line(self) -> str:
        """`12/60 periods (20%), 1.5/s, ETA 0:32` (rate and ETA once something is done)."""
        text = f"{self.done}/{self.total} {self.what}"
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        elapsed = self.clock() - self._began
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            text += f", {rate:.1f}/s" if rate >= 1 else f", {60 * rate:.1f}/min"
            if self.total > self.done:
                text += f", ETA {_duration((self.total - self.done) / rate)}"
        else:
            text += f", {_duration(elapsed)} so far"
        return text

    def update(
        self, *, done: int | None = None, total: int | None = None, current: str | None = None
    ) -> None:
        if done is not None:
            self.done = done
        if total is not None:
            if not self.total and not self.done:
                self._began = self.clock()  # the rate counts from when the work is known
            self.total = total
        if current is not None:
            self.current = current
        now = self.clock()
        if self._shown_at is not None and now - self._shown_at < (0.2 if self.tty else self.interval):
            return
        self._show(now)

    def _show(self, now: float) -> None:
        self._shown_at = now
        text = self.line()
        if self.tty and text == self._last and not self.current:
            return
        if self.tty:
            if self.current:
                text += f"  {self.current}"
            # A line wider than the terminal wraps, and \r would then rewrite only its last part.
            text = text[: max(shutil.get_terminal_size((100, 24)).columns - 1, 20)]
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        elif (self.done, self.total) != self._counted:
            self.stream.write(text + "\n")
        self._last = text
        self._counted = (self.done, self.total)
        self.stream.flush()

    def note(self, message: str) -> None:
        """A line of its own (a warning, an action fired), above the counter on a terminal."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
            self._shown_at = None
        self.stream.write(message + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """The last count, on a line of its own."""
        self.current = ""
        self._show(self.clock())
        if self.tty:
            self.stream.write("\n")
            self._width = 0
        self.stream.flush()
