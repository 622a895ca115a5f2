"""The delivery loop: sends the pending deliveries Publish and Subscribe committed, and retries
them on the delivery policy's schedule.

The loop claims due rows with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises
writers) and hands each to a bounded thread pool as soon as it is claimed; it does not wait for a
round's slowest send before claiming the next rows. Finished sends are recorded in batches, in
the transaction of the next claim (one statement, one commit per round); a round runs when a
Publish in this process commits (woken in-process), when other processes' commits are announced
(wakeup.py, PostgreSQL) or found by the poll, and at most RECORD_DELAY after a send finished.
HTTP/S is sent here (one RSA signature and one JSON document per message, shared by its
subscribers: signing.Documents); the other protocols by the senders in channels.py (email,
redis, store), with the same retry machinery. A process killed while sending leaves its rows
leased; when the lease runs out another round (in this process after a restart, or another
process) sends them again from the stored payload: same MessageId, same Timestamp, same
Signature. Subscribers see at-least-once delivery, as with SNS.

`console` subscriptions are delivered by recording a ConsoleNotification event in the outbox (the
console's live feed shows it on the owner's pages), when the worker has a `console` sink.
"""

from __future__ import annotations

import json
import logging
import threading
import time
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
from tailrace.notify.signing import Documents, Signer
from tailrace.notify.tables import create_tables, deliveries

log = logging.getLogger("tailrace.notify")

_LEASE = (
    deliveries.update()
    .where(deliveries.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(lease_until=sa.bindparam("until"))
)
_OUTCOME = deliveries.update().where(
    deliveries.c.id == sa.bindparam("b_id"), deliveries.c.status == "pending"
)

RECORD_DELAY = 0.2
"""Seconds a finished send may wait to be recorded with others (its row stays leased meanwhile)."""

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
        self._documents = Documents(signer)
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
        now: sa.BindParameter[datetime] = sa.bindparam("now")
        self._due = (  # built once: a round runs it for every message published here
            sa.select(deliveries)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_at <= now,
                deliveries.c.protocol.in_(self.protocols),
                sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            )
            .order_by(deliveries.c.next_at, deliveries.c.id)
            .limit(sa.bindparam("limit"))
        )
        self._due_for_update = self._due.with_for_update(skip_locked=True)
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
            with self._lock:
                room = self.in_flight_limit - self._in_flight
                done, self._done = self._done, []
            limit = min(room, self.batch)
            try:
                rows = self._round(self.clock.now(), done, limit)
                more = limit > 0 and len(rows) == limit
                for row in rows:
                    self._submit(row)
            except Exception:  # a database hiccup must not end the loop; the next round retries
                with self._lock:  # kept for the next round (else they would wait for their lease)
                    self._done[:0] = done
                log.exception("delivery round failed")
                more = False
            if not more:
                self._idle()
            self._wake.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._record_done()
        if self._keepalive is not None:
            self._keepalive.close()

    def _idle(self) -> None:
        """Wait for a wake-up, the poll, or finished sends to record (at most RECORD_DELAY old)."""
        poll = time.monotonic() + self.poll_interval
        while not self._wake.wait(max(0.0, min(RECORD_DELAY, poll - time.monotonic()))):
            with self._lock:
                recordable = bool(self._done)
            if recordable or time.monotonic() >= poll:
                return

    def _round(
        self, now: datetime, done: list[tuple[dict[str, Any], Outcome]], limit: int
    ) -> list[dict[str, Any]]:
        """Record finished sends and claim due rows, in one transaction (one commit per round)."""
        if not done and limit <= 0:
            return []
        with self.engine.begin() as conn:
            if done:
                self._record_in(conn, done)
            return self._claim_in(conn, now, limit) if limit > 0 else []

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
                was_full = self._in_flight >= self.in_flight_limit
                self._in_flight -= 1
                if outcome is not None:
                    self._done.append((row, outcome))
                # Outcomes wait for the next round (a Publish's wake-up, or RECORD_DELAY), to be
                # recorded together; a send wakes the loop only when the loop waits for room.
                wake = was_full or len(self._done) >= self.batch
            if wake:
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
        with self.engine.begin() as conn:
            self._record_in(conn, done)

    def _record_in(self, conn: sa.Connection, done: list[tuple[dict[str, Any], Outcome]]) -> None:
        updates = [{"b_id": row["id"], **self._outcome(row, outcome)} for row, outcome in done]
        conn.execute(_OUTCOME, updates)  # one statement for the batch

    def _claim(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            return self._claim_in(conn, now, limit)

    def _claim_in(self, conn: sa.Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
        until = now + self.lease
        query = self._due_for_update if conn.dialect.name == "postgresql" else self._due
        params = {"now": now, "limit": limit}
        rows = [dict(r) for r in conn.execute(query, params).mappings()]
        if rows:
            conn.execute(_LEASE, {"ids": [r["id"] for r in rows], "until": until})
        for r in rows:
            r["lease_until"] = until
        return rows

    def _deliver(self, row: dict[str, Any]) -> Outcome:
        try:
            channel = self.senders.get(row["protocol"])
            if channel is not None:
                return channel(row, json.loads(row["payload"]))
            body, headers = self._documents.request(row["payload"], row["subscription_arn"])
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
        # The same columns for every outcome: a batch is one executemany, whose statement is
        # compiled from the first row's keys (a retry's next_at beside a delivery's status).
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_until": None,
            "updated_at": now,
            "last_error": None,
            "status": "pending",
            "next_at": row["next_at"],
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
