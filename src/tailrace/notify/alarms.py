"""Metric alarms: what the CloudWatch alarm API does and the evaluation loop (the checks of an
alarm's configuration and the message it sends to its topics are in alarmconfig.py).

Each alarm is evaluated about once a minute by exactly one process: a round claims due alarms
with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers), evaluates them
with alarmrules.evaluate, and commits the new state, its history item and the pending deliveries
of its actions in one transaction. Actions run only on a transition and only with ActionsEnabled.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock
from tailrace.events.model import AlarmStateChanged
from tailrace.notify import alarmrules as rules
from tailrace.notify.alarmconfig import (
    AlarmLimitExceeded,
    InvalidFormat,
    alarm_message,
    check_alarm,
    region_name,
    rule_of,
    same_metric,
)
from tailrace.notify.arns import account_for
from tailrace.notify.errors import NotifyError, ResourceNotFound
from tailrace.notify.events import Sink
from tailrace.notify.metrics import MetricStore, dims_key
from tailrace.notify.tables import alarm_history, alarms, meta, reading
from tailrace.notify.topics import TopicService
from tailrace.periodic import PeriodicThread
from tailrace.state.engine import create_tables

log = logging.getLogger("tailrace.notify")

__all__ = [
    "AlarmEvaluator",
    "AlarmLimitExceeded",
    "AlarmService",
    "InvalidFormat",
    "alarm_message",
    "check_alarm",
]


_TRANSITION_COLUMNS = [
    alarms.c[name]
    for name in ("owner", "name", "region", "config", "actions_enabled", "state", "reason", "config_updated")
]
"""What `_transition` reads of an alarm (its message and history), not the other timestamps."""


def _by_owner(rows: Sequence[Mapping[str, Any]], chunk: int = 500) -> Iterator[tuple[str, list[str]]]:
    """(owner, up to `chunk` alarm names) covering `rows`: bounded IN lists."""
    names: dict[str, list[str]] = {}
    for row in rows:
        names.setdefault(row["owner"], []).append(row["name"])
    for owner, owned in names.items():
        for i in range(0, len(owned), chunk):
            yield owner, owned[i : i + chunk]


class _Writes:
    """An evaluation round's transitions, written at its end: state updates and history items."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []


class AlarmService:
    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock,
        metrics: MetricStore,
        topics: TopicService,
        *,
        emit: Sink | None = None,
        lease: float = 60.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.metrics = metrics
        self.topics = topics
        self.emit = emit
        self.lease = timedelta(seconds=lease)
        self._local = threading.local()  # state changes waiting for their commit, per thread
        create_tables(meta, engine)

    # --- the API -----------------------------------------------------------------------------------

    def arn(self, owner: str, region: str, name: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{account_for(owner)}:alarm:{name}"

    def put(self, owner: str, region: str, params: Mapping[str, Any]) -> None:
        config = check_alarm(owner, params)
        now = self.clock.now()
        name = config["AlarmName"]
        with self.engine.begin() as conn:
            row = conn.execute(self._one(owner, name)).mappings().first()
            values = {
                "config": json.dumps(config),
                "actions_enabled": config["ActionsEnabled"],
                "config_updated": now,
                "next_eval_at": now,
                "region": region,
            }
            if row is None:
                if (
                    conn.execute(sa.select(sa.func.count()).where(alarms.c.owner == owner)).scalar_one()
                    >= 5000
                ):
                    raise AlarmLimitExceeded("The maximum number of alarms per owner (5000) is reached")
                conn.execute(
                    alarms.insert().values(
                        owner=owner,
                        name=name,
                        state=rules.INSUFFICIENT,
                        reason="Unchecked: Initial alarm creation",
                        reason_data=None,
                        state_updated=now,
                        state_transitioned=now,
                        **values,
                    )
                )
                summary = f'Alarm "{name}" created'
            else:
                conn.execute(
                    alarms.update().where(alarms.c.owner == owner, alarms.c.name == name).values(**values)
                )
                summary = f'Alarm "{name}" updated'
            self._history(conn, owner, name, now, "ConfigurationUpdate", summary, {"type": "Update"})

    def _one(self, owner: str | None, name: str) -> sa.Select[Any]:
        query = sa.select(alarms).where(alarms.c.name == name)
        return query.where(alarms.c.owner == owner) if owner is not None else query

    def describe(
        self,
        owner: str | None,
        *,
        names: Sequence[str] = (),
        prefix: str | None = None,
        state: str | None = None,
        action_prefix: str | None = None,
        metric: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        query = sa.select(alarms).order_by(alarms.c.name)
        if owner is not None:
            query = query.where(alarms.c.owner == owner)
        if names:
            query = query.where(alarms.c.name.in_(list(names)))
        if prefix:
            query = query.where(alarms.c.name.startswith(prefix, autoescape=True))
        if state:
            query = query.where(alarms.c.state == state)
        with reading(self.engine) as conn:
            rows = list(conn.execute(query).mappings())
        out = []
        for row in rows:
            config = json.loads(row["config"])
            if action_prefix and not any(
                a.startswith(action_prefix)
                for a in config["AlarmActions"] + config["OKActions"] + config["InsufficientDataActions"]
            ):
                continue
            if metric is not None and not same_metric(config, metric):
                continue
            out.append(self._shape(row, config))
        return out

    def _shape(self, row: Mapping[Any, Any], config: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in config.items() if v is not None},
            "AlarmArn": self.arn(row["owner"], row["region"], row["name"]),
            "ActionsEnabled": bool(row["actions_enabled"]),
            "AlarmConfigurationUpdatedTimestamp": row["config_updated"],
            "StateValue": row["state"],
            "StateReason": row["reason"],
            "StateReasonData": row["reason_data"],
            "StateUpdatedTimestamp": row["state_updated"],
            "StateTransitionedTimestamp": row["state_transitioned"],
        }

    def delete(self, owner: str | None, names: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            query = sa.select(alarms.c.name).where(alarms.c.name.in_(list(names)))
            if owner is not None:
                query = query.where(alarms.c.owner == owner)
            found = {r[0] for r in conn.execute(query)}
            missing = [n for n in names if n not in found]
            if missing:
                raise ResourceNotFound(f"The following alarms were not found: {', '.join(missing)}")
            delete = alarms.delete().where(alarms.c.name.in_(list(names)))
            if owner is not None:
                delete = delete.where(alarms.c.owner == owner)
            conn.execute(delete)

    def set_actions_enabled(self, owner: str | None, names: Sequence[str], enabled: bool) -> None:
        with self.engine.begin() as conn:
            update = alarms.update().where(alarms.c.name.in_(list(names)))
            if owner is not None:
                update = update.where(alarms.c.owner == owner)
            conn.execute(update.values(actions_enabled=enabled))

    def set_state(
        self, owner: str | None, name: str, state: str, reason: str, reason_data: str | None
    ) -> None:
        if reason_data:
            try:
                json.loads(reason_data)
            except ValueError:
                raise InvalidFormat("StateReasonData is not valid JSON")
        with self.engine.begin() as conn:
            row = conn.execute(self._one(owner, name)).mappings().first()
            if row is None:
                raise ResourceNotFound(f"Alarm {name} not found")
            self._transition(conn, row, state, reason, reason_data, self.clock.now())
        self._flush()

    def history(
        self,
        owner: str | None,
        *,
        name: str | None = None,
        kind: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        ascending: bool = False,
    ) -> list[dict[str, Any]]:
        query = sa.select(alarm_history)
        if owner is not None:
            query = query.where(alarm_history.c.owner == owner)
        if name:
            query = query.where(alarm_history.c.alarm_name == name)
        if kind:
            query = query.where(alarm_history.c.kind == kind)
        if start:
            query = query.where(alarm_history.c.at >= start)
        if end:
            query = query.where(alarm_history.c.at <= end)
        order = alarm_history.c.id if ascending else alarm_history.c.id.desc()
        with reading(self.engine) as conn:
            rows = conn.execute(query.order_by(order).limit(limit)).mappings()
            return [
                {
                    "AlarmName": r["alarm_name"],
                    "AlarmType": "MetricAlarm",
                    "Timestamp": r["at"],
                    "HistoryItemType": r["kind"],
                    "HistorySummary": r["summary"],
                    "HistoryData": r["data"],
                }
                for r in rows
            ]

    # --- transitions and actions -------------------------------------------------------------------

    def _history(
        self,
        conn: sa.Connection,
        owner: str,
        name: str,
        at: datetime,
        kind: str,
        summary: str,
        data: Any,
        writes: _Writes | None = None,
    ) -> None:
        item = {"owner": owner, "alarm_name": name, "at": at, "kind": kind, "summary": summary}
        item["data"] = json.dumps(data)
        if writes is not None:
            writes.history.append(item)
        else:
            conn.execute(alarm_history.insert().values(**item))

    def _transition(
        self,
        conn: sa.Connection,
        row: Mapping[Any, Any],
        state: str,
        reason: str,
        reason_data: str | None,
        now: datetime,
        writes: _Writes | None = None,
        next_eval_at: datetime | None = None,
    ) -> bool:
        """Record the state; on a change, its history item and (ActionsEnabled) its actions.
        With `writes` (an evaluation round) the state and history are added to it, for one
        statement each at the round's end; actions are published at once."""
        old = row["state"]
        values: dict[str, Any] = {"reason": reason, "reason_data": reason_data, "state_updated": now}
        if old == state:
            if writes is not None:  # set meanwhile to the state this round found: released here
                values.update(lease_until=None, next_eval_at=next_eval_at)
            conn.execute(self._one_update(row).values(**values))
            return False
        values.update(state=state, state_transitioned=now)
        if writes is not None:
            writes.updates.append(
                {"b_owner": row["owner"], "b_name": row["name"], "lease_until": None,
                 "next_eval_at": next_eval_at, **values}
            )  # fmt: skip
        else:
            conn.execute(self._one_update(row).values(**values))
        config = json.loads(row["config"])
        name = row["name"]
        self._history(
            conn,
            row["owner"],
            name,
            now,
            "StateUpdate",
            f"Alarm updated from {old} to {state}",
            {
                "version": "1.0",
                "oldState": {"stateValue": old, "stateReason": row["reason"]},
                "newState": {"stateValue": state, "stateReason": reason},
            },
            writes,
        )
        key = {rules.ALARM: "AlarmActions", rules.OK: "OKActions"}.get(state, "InsufficientDataActions")
        if row["actions_enabled"] and config[key]:
            message = alarm_message(
                row, config, old, state, reason, now, self.arn(row["owner"], row["region"], name)
            )
            subject = f'{state}: "{name}" in {region_name(row["region"])}'[:100]
            for topic_arn in config[key]:
                try:
                    with conn.begin_nested():
                        self.topics.publish_in(conn, row["owner"], topic_arn, message, subject=subject)
                    summary, ok = f"Successfully executed action {topic_arn}", True
                except NotifyError as exc:
                    summary, ok = (
                        f"Failed to execute action {topic_arn}. Received error: {exc.message}",
                        False,
                    )
                self._history(
                    conn,
                    row["owner"],
                    name,
                    now,
                    "Action",
                    summary,
                    {"actionState": "Succeeded" if ok else "Failed"},
                    writes,
                )
        if self.emit is not None:
            self._pending().append(
                AlarmStateChanged(
                    at=now,
                    owner=row["owner"],
                    alarm_name=name,
                    alarm_arn=self.arn(row["owner"], row["region"], name),
                    old=old,
                    new=state,
                    reason=reason,
                    region=row["region"],
                )
            )
        return True

    @staticmethod
    def _one_update(row: Mapping[Any, Any]) -> sa.Update:
        return alarms.update().where(alarms.c.owner == row["owner"], alarms.c.name == row["name"])

    def _pending(self) -> list[AlarmStateChanged]:
        if not hasattr(self._local, "events"):
            self._local.events = []
        return self._local.events

    def _flush(self) -> None:
        events = self._pending()
        if self.emit is None or not events:
            return
        batch = list(events)
        events.clear()
        for event in batch:
            try:
                self.emit(event)
            except Exception:  # the transition is committed; a lost notification event is logged
                log.exception("could not record %s", event.TYPE)
        self.topics._committed()

    # --- evaluation --------------------------------------------------------------------------------

    def evaluate_due(self, *, limit: int = 10_000) -> int:
        """One round: claim due alarms, evaluate them, commit. Returns how many were evaluated.

        Metric buckets are read once per metric and range for the whole round; alarms whose state
        stays are recorded in one batched update; transitions are checked against the alarms as
        they are now in one query and written in one update and one insert of history items
        (their actions are published one by one, each in a savepoint)."""
        now = self.clock.now()
        rows = self._claim(now, limit)
        cache: dict[tuple[Any, ...], dict[datetime, Any]] = {}
        results: list[tuple[Mapping[str, Any], rules.Rule, rules.Evaluation]] = []
        for row in rows:
            try:
                config = json.loads(row["config"])
                rule = rule_of(config)
                starts = rules.evaluation_range(rule, now)
                key = (row["owner"], config["Namespace"], config["MetricName"], dims_key(config["Dimensions"]),
                       rule.period, starts[0])  # fmt: skip
                if key not in cache:
                    metric = self.metrics.find_metric(
                        row["owner"], config["Namespace"], config["MetricName"], config["Dimensions"]
                    )
                    end = starts[-1] + timedelta(seconds=rule.period)
                    cache[key] = self.metrics.buckets(metric, starts[0], end, rule.period)
                found = cache[key]
                values = [(at, found[at].statistic(rule.statistic) if at in found else None) for at in starts]
                results.append((row, rule, rules.evaluate(rule, values, row["state"], now)))
            except Exception:  # one bad alarm must not stop the round
                log.exception("evaluating alarm %s of %s failed", row["name"], row["owner"])
        same, changed = [], []
        for row, rule, result in results:
            data = json.dumps(result.data)
            next_at = rules.next_evaluation(rule, now)
            if result.state == row["state"]:
                same.append(
                    {"b_owner": row["owner"], "b_name": row["name"], "b_config": row["config"],
                     "reason": result.reason, "reason_data": data, "state_updated": now,
                     "next_eval_at": next_at, "lease_until": None}
                )  # fmt: skip
            else:
                changed.append((row, result, data, next_at))
        writes = _Writes()
        with self.engine.begin() as conn:
            fresh = self._current(conn, [row for row, *_ in changed])
            for row, result, data, next_at in changed:
                now_row = fresh.get((row["owner"], row["name"]))
                if now_row is None or now_row["config"] != row["config"]:
                    continue  # deleted or changed meanwhile: the next round evaluates the new one
                self._transition(conn, now_row, result.state, result.reason, data, now, writes, next_at)
            if writes.updates:
                conn.execute(
                    alarms.update().where(
                        alarms.c.owner == sa.bindparam("b_owner"), alarms.c.name == sa.bindparam("b_name")
                    ),
                    writes.updates,
                )
            if writes.history:
                conn.execute(alarm_history.insert(), writes.history)
            if same:
                conn.execute(
                    alarms.update().where(
                        alarms.c.owner == sa.bindparam("b_owner"),
                        alarms.c.name == sa.bindparam("b_name"),
                        alarms.c.config == sa.bindparam("b_config"),
                    ),
                    same,
                )
        self._flush()
        return len(rows)

    @staticmethod
    def _current(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Any]:
        """The alarms' rows as they are now, in this transaction, by (owner, name)."""
        out = {}
        for owner, names in _by_owner(rows):
            query = sa.select(*_TRANSITION_COLUMNS).where(alarms.c.owner == owner, alarms.c.name.in_(names))
            out.update({(r["owner"], r["name"]): r for r in conn.execute(query).mappings()})
        return out

    def _claim(self, now: datetime, limit: int) -> list[Mapping[str, Any]]:
        """Lease due alarms; their owner, name, config and state (what a round evaluates; a
        transition reads the whole row again, as it is at the commit)."""
        with self.engine.begin() as conn:
            query = (
                sa.select(alarms.c.owner, alarms.c.name, alarms.c.config, alarms.c.state)
                .where(
                    alarms.c.next_eval_at <= now,
                    sa.or_(alarms.c.lease_until.is_(None), alarms.c.lease_until < now),
                )
                .order_by(alarms.c.next_eval_at)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows: list[Mapping[str, Any]] = [dict(r) for r in conn.execute(query).mappings()]
            until = now + self.lease
            for owner, names in _by_owner(rows):  # IN lists: no per-row parameters to convert
                conn.execute(
                    alarms.update()
                    .where(alarms.c.owner == owner, alarms.c.name.in_(names))
                    .values(lease_until=until)
                )
        return rows


class AlarmEvaluator(PeriodicThread):
    """The evaluation loop: `start()` runs `evaluate_due` every `interval` seconds until `stop()`;
    expired metric buckets are dropped once an hour."""

    thread_name, what = "tailrace-alarms", "alarm evaluation round"

    def __init__(self, alarms_: AlarmService, *, interval: float = 10.0) -> None:
        super().__init__(interval)
        self.alarms = alarms_
        self._last_expire = 0.0

    def round(self) -> None:
        import time

        self.alarms.evaluate_due()
        if time.monotonic() - self._last_expire > 3600:
            self.alarms.metrics.expire()
            self._last_expire = time.monotonic()
