"""A round of work repeated on a daemon thread: the shape of every background loop that is not
woken by anything but time (alarm evaluation, the SnsAlarm relay, the daily lifecycle run)."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger("tailrace")


class PeriodicThread:
    """Subclasses implement `round()`. Between `start()` and `stop()` it runs every `interval`
    seconds; a round that raises is logged and the next one runs on time (a long-running
    process never dies of one bad round)."""

    thread_name = "tailrace-periodic"
    what = "background round"
    """How the log names a failed round."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> object:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.round()
            except Exception:  # e.g. the database briefly unavailable: the next round retries
                log.exception("%s failed", self.what)
            self._stop.wait(self.interval)
