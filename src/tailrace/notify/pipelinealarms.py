"""SnsAlarm objects of pipelines, and the built-in pipeline metrics, from the state store's outbox.

The scheduler records each fired action as an `action.fired` event (runtime/firing.py, with the
subject and message already evaluated against the instance); this relay publishes the SnsAlarm
ones to their topic. Each attempt that ends (`attempt.status` to FINISHED, FAILED, TIMEDOUT or
CANCELED) adds 1 to `AttemptsSucceeded` or `AttemptsFailed`, and its run time to
`AttemptDuration` (seconds), in namespace `Tailrace/Pipelines` of the pipeline's owner, with
dimensions PipelineId and PipelineId+Activity.

The relay keeps its cursor (the last event id handled) in `sns_relay_cursor` and moves it in
the transaction that commits the messages' deliveries, so each fired action is published exactly
once even with several processes (the cursor row is locked for the round). It starts at the end
of the outbox: history fired before the relay first ran is not replayed. The pipeline's owner
publishes, so an SnsAlarm can only reach its own owner's topics.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

import sqlalchemy as sa

from tailrace.events.model import ActionFired, AttemptStatusChanged
from tailrace.notify.errors import NotifyError
from tailrace.notify.metrics import MetricStore
from tailrace.notify.tables import meta
from tailrace.notify.topics import TopicService
from tailrace.periodic import PeriodicThread
from tailrace.state import schema
from tailrace.state.engine import create_tables
from tailrace.state.sql import event_from_row

log = logging.getLogger("tailrace.notify")
NAME = "snsalarm"
BUILTIN_NAMESPACE = "Tailrace/Pipelines"
ENDED = {
    "FINISHED": "AttemptsSucceeded",
    "FAILED": "AttemptsFailed",
    "TIMEDOUT": "AttemptsFailed",
    "CANCELED": "AttemptsFailed",
}

cursor = sa.Table(
    "sns_relay_cursor",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
)


class SnsAlarmRelay(PeriodicThread):
    def __init__(
        self,
        engine: sa.Engine,
        topics: TopicService,
        metrics: MetricStore | None = None,
        *,
        interval: float = 1.0,
        batch: int = 500,
    ) -> None:
        super().__init__(interval)
        self.engine = engine
        self.topics = topics
        self.metrics = metrics
        self.batch = batch
        create_tables(meta, engine)
        with engine.begin() as conn:
            if conn.execute(sa.select(cursor.c.last_id).where(cursor.c.name == NAME)).first() is None:
                last = conn.execute(sa.select(sa.func.max(schema.events.c.id))).scalar() or 0
                try:
                    with conn.begin_nested():
                        conn.execute(cursor.insert().values(name=NAME, last_id=last))
                except sa.exc.IntegrityError:
                    pass  # another process created it first

    def run_once(self) -> int:
        """Publish the SnsAlarm actions fired since the cursor; returns how many were published."""
        published = 0
        with self.engine.begin() as conn:
            query = sa.select(cursor.c.last_id).where(cursor.c.name == NAME)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            last = int(conn.execute(query).scalar_one())
            rows = list(
                conn.execute(
                    sa.select(schema.events)
                    .where(
                        schema.events.c.id > last,
                        schema.events.c.type.in_(("action.fired", "attempt.status")),
                    )
                    .order_by(schema.events.c.id)
                    .limit(self.batch)
                ).mappings()
            )
            if not rows:
                return 0
            owners = self._owners(conn, {r["pipeline_id"] for r in rows})
            for row in rows:
                event = event_from_row(row).event
                owner = event.owner or owners.get(row["pipeline_id"])
                if isinstance(event, AttemptStatusChanged):
                    if self.metrics is not None and owner is not None:
                        self._attempt_metrics(conn, owner, event)
                elif isinstance(event, ActionFired) and event.action_type == "SnsAlarm":
                    published += self._publish(conn, owner, event)
            conn.execute(cursor.update().where(cursor.c.name == NAME).values(last_id=rows[-1]["id"]))
        if published:
            self.topics._committed()
        return published

    def _owners(self, conn: sa.Connection, ids: set[str]) -> dict[str, str]:
        p = schema.pipelines
        return {r[0]: r[1] for r in conn.execute(sa.select(p.c.id, p.c.owner).where(p.c.id.in_(list(ids))))}

    def _publish(self, conn: sa.Connection, owner: str | None, fired: ActionFired) -> int:
        arn = fired.topic_arn or ""
        where = f"{fired.pipeline_id} {fired.node}: SnsAlarm '{fired.action_id}' ({fired.trigger})"
        if owner is None:
            log.warning("%s: the pipeline is gone; nothing published", where)
            return 0
        try:
            with conn.begin_nested():
                subject = (fired.subject or "")[:100] or None
                self.topics.publish_in(conn, owner, arn, fired.message or "", subject=subject)
        except NotifyError as exc:
            log.warning("%s: not published to %r: %s", where, arn, exc.message)
            return 0
        return 1

    def _attempt_metrics(self, conn: sa.Connection, owner: str, ended: AttemptStatusChanged) -> None:
        outcome = ENDED.get(ended.new)
        if outcome is None or self.metrics is None:
            return
        at = ended.at
        activity = str(ended.object_id or "").lstrip("@").split("_", 1)[0]
        pipeline = [{"Name": "PipelineId", "Value": ended.pipeline_id}]
        both = [*pipeline, {"Name": "Activity", "Value": activity}]
        data: list[dict[str, Any]] = [
            {"MetricName": outcome, "Dimensions": dims, "Value": 1.0, "Timestamp": at, "Unit": "Count"}
            for dims in (pipeline, both)
        ]
        a = schema.attempts
        started = conn.execute(
            sa.select(a.c.started_at).where(a.c.pipeline_id == ended.pipeline_id, a.c.id == ended.object_id)
        ).scalar()
        if started is not None:
            seconds = (at - (started if started.tzinfo else started.replace(tzinfo=UTC))).total_seconds()
            data.append(
                {
                    "MetricName": "AttemptDuration",
                    "Dimensions": both,
                    "Value": max(seconds, 0.0),
                    "Timestamp": at,
                }
            )
        try:
            with conn.begin_nested():
                self.metrics.put_in(conn, owner, BUILTIN_NAMESPACE, data, builtin=True)
        except NotifyError as exc:  # e.g. an event older than the metrics window
            log.debug("attempt metric not recorded: %s", exc.message)

    thread_name, what = "tailrace-snsalarm", "SnsAlarm relay round"

    def round(self) -> int:
        return self.run_once()


def topic_check(topics: TopicService) -> Any:
    """(owner, topicArn) -> None when the owner has that topic, else why not: the check the
    runtime makes at PutPipelineDefinition (a warning) and when an SnsAlarm fires (an
    actions.log error instead of a message)."""
    from tailrace.notify.topics import Scope

    def check(owner: str, arn: str) -> str | None:
        try:
            topics.topic_attributes(Scope(owner=owner), arn)
        except NotifyError as exc:
            return f"topicArn {arn!r} names no topic of this owner ({exc.message})"
        return None

    return check
