"""PeriodicThread: rounds repeat until stop, and a round that raises does not end the loop."""

from __future__ import annotations

import threading

from tailrace.periodic import PeriodicThread


class Flaky(PeriodicThread):
    def __init__(self) -> None:
        super().__init__(0.0)
        self.rounds = 0
        self.third = threading.Event()

    def round(self) -> None:
        self.rounds += 1
        if self.rounds >= 3:
            self.third.set()
        if self.rounds == 1:
            raise RuntimeError("the database is briefly away")


def test_a_failing_round_is_logged_and_the_next_one_runs(caplog):
    loop = Flaky().start()
    try:
        assert loop.third.wait(30)
    finally:
        loop.stop()
    assert loop._thread is not None and not loop._thread.is_alive()
    assert "background round failed" in caplog.text
    assert "briefly away" in caplog.text
