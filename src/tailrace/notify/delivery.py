"""The delivery loop: sends the pending deliveries Publish and Subscribe committed, and retries
them on the delivery policy's schedule.

The loop claims due rows with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises
writers) and hands each to a bounded thread pool as soon as it is claimed; it does not wait for a
round's slowest send before claiming the next rows. Finished sends are recorded in batches (one
statement, one commit). A Publish in this process wakes the loop at its commit; other processes'
commits are found by the poll. HTTP/S is sent here; the other protocols by the senders in
channels.py (email, redis, store), with the same retry machinery. A process killed while
sending leaves its rows leased; when the lease runs out another round (in this process after a
restart, or another process) sends them again from the stored payload: same MessageId, same
Timestamp, same Signature. Subscribers see at-least-once delivery, as with SNS.

`console` subscriptions are delivered by recording a ConsoleNotification event in the outbox (the
console's live feed shows it on the owner's pages), when the worker has a `console` sink.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock
from tailrace.events.model import ConsoleNotification
from tailrace.notify.channels import ChannelSender
from tailrace.notify.events import Sink
from tailrace.notify.httpsend import DestinationPolicy, KeepAlive, Outcome
from tailrace.notify.policy import retry_delay
from tailrace.notify.signing import Signer, http_request
from tailrace.notify.tables import create_tables, deliveries

log = logging.getLogger("tailrace.notify")

Send = Callable[[str, bytes, dict[str, str], DestinationPolicy], Outcome]


class DeliveryWorker:
    """`start()` runs rounds in a thread until `stop()`; `run_once()` runs one round (tests)."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock,
        signer: Signer,
        destinations: DestinationPolicy,
        *,
        threads: int = 8,
        poll_interval: float = 0.5,
        lease: float = 60.0,
        batch: int = 100,
        send: Send | None = None,
        senders: dict[str, ChannelSender] | None = None,
        console: Sink | None = None,
    ) -> None:
        """`console`: where `console` deliveries go (tailrace.notify.events.store_sink); without
        it they stay pending for a worker that has one."""
        self.engine = engine
        self.clock = clock
        self.signer = signer
        self.destinations = destinations
        self.poll_interval = poll_interval
        self.lease = timedelta(seconds=lease)
        self.batch = batch
        self._keepalive = KeepAlive() if send is None else None
        self.send: Send = send if send is not None else self._keepalive  # type: ignore[assignment]
        self.senders = dict(senders or {})
        self.console = console
        if console is not None:
            self.senders["console"] = self._to_console
        self.protocols = ("http", "https", *sorted(self.senders))
        self.in_flight_limit = max(batch, threads * 4)
        """Claimed rows waiting for or in a send; the loop claims no more than this."""
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tailrace-deliver")
        self._done: list[tuple[dict[str, Any], Outcome]] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        create_tables(engine)

    # --- the loop ----------------------------------------------------------------------------------

    def start(self) -> DeliveryWorker:
        self._thread = threading.Thread(target=self._run, name="tailrace-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """Run a round now (Publish calls this after its commit, for low latency)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            more = False
            try:
                self._record_done()
                with self._lock:
                    room = self.in_flight_limit - self._in_flight
                if room > 0:
                    rows = self._claim(self.clock.now(), min(room, self.batch))
                    more = len(rows) == min(room, self.batch)
                    for row in rows:
                        self._submit(row)
            except Exception:  # a database hiccup must not end the loop; the next round retries
                log.exception("delivery round failed")
                more = False
            if not more:
                self._wake.wait(self.poll_interval)
            self._wake.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._record_done()
        if self._keepalive is not None:
            self._keepalive.close()

    def _submit(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._in_flight += 1
        future = self._pool.submit(self._deliver, row)

        def done(f: Any) -> None:
            try:
                outcome = f.result()
            except BaseException as exc:  # cancelled at shutdown: the lease gives it back
                outcome = None
                log.debug("delivery %s not sent: %s", row["id"], exc)
            with self._lock:
                self._in_flight -= 1
                if outcome is not None:
                    self._done.append((row, outcome))
            self._wake.set()

        future.add_done_callback(done)

    def _record_done(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        if not done:
            return
        try:
            self._record(done)
        except Exception:
            with self._lock:  # kept for the next round (else they would wait for their lease)
                self._done[:0] = done
            raise

    # --- one round ---------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim due deliveries, send them, record the outcomes; returns how many were sent."""
        now = self.clock.now()
        rows = self._claim(now, self.batch)
        if not rows:
            return 0
        outcomes = list(self._pool.map(self._deliver, rows))
        self._record(list(zip(rows, outcomes, strict=True)))
        return len(rows)

    def _record(self, done: list[tuple[dict[str, Any], Outcome]]) -> None:
        updates = [{"b_id": row["id"], **self._outcome(row, outcome)} for row, outcome in done]
        with self.engine.begin() as conn:  # one statement and one commit for the batch
            conn.execute(
                deliveries.update().where(
                    deliveries.c.id == sa.bindparam("b_id"), deliveries.c.status == "pending"
                ),
                updates,
            )

    def _claim(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        until = now + self.lease
        with self.engine.begin() as conn:
            query = (
                sa.select(deliveries)
                .where(
                    deliveries.c.status == "pending",
                    deliveries.c.next_at <= now,
                    deliveries.c.protocol.in_(self.protocols),
                    sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
                )
                .order_by(deliveries.c.next_at, deliveries.c.id)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            if rows:
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id.in_([r["id"] for r in rows]))
                    .values(lease_until=until)
                )
        for r in rows:
            r["lease_until"] = until
        return rows

    def _deliver(self, row: dict[str, Any]) -> Outcome:
        try:
            payload = json.loads(row["payload"])
            channel = self.senders.get(row["protocol"])
            if channel is not None:
                return channel(row, payload)
            body, headers = http_request(payload, row["subscription_arn"], self.signer)
            return self.send(row["endpoint"], body, headers, self.destinations)
        except Exception as exc:  # a bad row must not stop the others
            log.exception("delivery %s could not be prepared", row["id"])
            return Outcome(delivered=False, retry=False, detail=f"internal error: {type(exc).__name__}")

    def _to_console(self, row: Mapping[str, Any], payload: dict[str, Any]) -> Outcome:
        if payload.get("Type") != "Notification":
            return Outcome(delivered=True, retry=False, detail="")  # nothing to confirm or show
        assert self.console is not None
        self.console(
            ConsoleNotification(
                at=self.clock.now(),
                owner=row["owner"],
                topic_arn=row["topic_arn"],
                subscription_arn=row["subscription_arn"],
                message_id=row["message_id"],
                subject=payload.get("Subject"),
                message=str(payload.get("Message", "")),
            )
        )
        return Outcome(delivered=True, retry=False, detail="")

    def _outcome(self, row: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        now = self.clock.now()
        attempts = row["attempts"] + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "updated_at": now,
            "last_error": None,
        }
        if outcome.delivered:
            values["status"] = "delivered"
        else:
            values["last_error"] = outcome.detail
            delay = retry_delay(json.loads(row["policy"]), attempts) if outcome.retry else None
            if delay is None:
                values["status"] = "failed"
                log.warning(
                    "delivery of %s to %s failed after %d attempt(s): %s",
                    row["message_id"],
                    row["subscription_arn"],
                    attempts,
                    outcome.detail,
                )
            else:
                values["next_at"] = now + timedelta(seconds=delay)
        return values
