"""SQL repositories of a pipeline's runs: instances and attempts (see abc.py for each method's
contract)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from tailrace.events.model import (
    AttemptStatusChanged,
    InstanceStatusChanged,
)
from tailrace.state import schema
from tailrace.state.abc import (
    LISTING_FIELDS,
    Attempt,
    Attempts,
    Instance,
    Instances,
    PipelineState,
    Status,
    Where,
)
from tailrace.state.rows import (
    _ATTEMPT,
    _ATTEMPT_BY_TASK,
    _ATTEMPTS_IN,
    _DEPENDENT_IDS,
    _ENDED,
    _ENDED_IN_CATEGORY,
    _INSTANCE,
    _INSTANCES_IN,
    _chunks,
    _dicts,
    _page_query,
    _Repo,
    _row_of,
    attempt_from_row,
    instance_from_row,
)


class SqlInstances(_Repo, Instances):
    t = schema.instances

    def add_many(self, instances: Sequence[Instance]) -> int:
        if not instances:
            return 0
        by_pipeline: dict[str, list[Instance]] = {}
        for inst in instances:
            by_pipeline.setdefault(inst.pipeline_id, []).append(inst)
        added = 0
        for pipeline_id, group in by_pipeline.items():
            existing = set(self.find_many(pipeline_id, [i.id for i in group]))
            fresh = list({i.id: i for i in group if i.id not in existing}.values())
            if not fresh:
                continue
            rows = [_row_of(i) for i in fresh]
            self.conn.execute(self._insert(self.t).on_conflict_do_nothing(), rows)
            edges = [
                {"pipeline_id": pipeline_id, "instance_id": i.id, "depends_on": dep}
                for i in fresh
                for dep in dict.fromkeys(
                    (*i.depends_on, *i.preconditions, *([i.resource_id] if i.resource_id else []))
                )
            ]
            if edges:
                self.conn.execute(self._insert(schema.instance_deps).on_conflict_do_nothing(), edges)
            added += len(fresh)
        return added

    def find(self, pipeline_id: str, instance_id: str) -> Instance | None:
        row = self.conn.execute(_INSTANCE, {"pid": pipeline_id, "oid": instance_id}).first()
        return instance_from_row(row._mapping) if row else None

    def find_many(self, pipeline_id: str, instance_ids: Collection[str]) -> dict[str, Instance]:
        out: dict[str, Instance] = {}
        for chunk in _chunks(instance_ids):
            for row in _dicts(self.conn.execute(_INSTANCES_IN, {"pid": pipeline_id, "ids": chunk})):
                inst = instance_from_row(row)
                out[inst.id] = inst
        return out

    def update(
        self,
        pipeline_id: str,
        instance_id: str,
        *,
        expect_status: Collection[Status] | None = None,
        detail: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> Instance | None:
        changes.setdefault("updated_at", self.tx.now())
        done = self._cas(self.t, pipeline_id, instance_id, expect_status, changes)
        if done is None:
            return None
        old_status, values = done
        new = instance_from_row(values)
        if new.status != old_status:
            fields = {"object_id": instance_id, "component": new.component_id}
            self._changed(InstanceStatusChanged, pipeline_id, old_status, new.status, detail, **fields)
        return new

    def in_status(
        self,
        pipeline_id: str,
        statuses: Collection[Status],
        *,
        component_id: str | None = None,
        limit: int | None = None,
        ready_only: bool = False,
    ) -> list[Instance]:
        q = sa.select(self.t).where(
            self.t.c.pipeline_id == pipeline_id, self.t.c.status.in_([s.value for s in statuses])
        )
        if component_id is not None:
            q = q.where(self.t.c.component_id == component_id)
        if ready_only:
            q = q.where(self.t.c.ready_at.is_not(None))
        q = q.order_by(self.t.c.scheduled_start, self.t.c.id)
        if limit is not None:
            q = q.limit(limit)
        return [instance_from_row(r) for r in _dicts(self.conn.execute(q))]

    def count_in_status(
        self,
        pipeline_id: str,
        statuses: Collection[Status],
        *,
        component_id: str | None = None,
        first_runs_only: bool = False,
    ) -> int:
        q = sa.select(sa.func.count()).where(
            self.t.c.pipeline_id == pipeline_id, self.t.c.status.in_([s.value for s in statuses])
        )
        if component_id is not None:
            q = q.where(self.t.c.component_id == component_id)
        if first_runs_only:
            q = q.where(self.t.c.reruns == 0)
        return int(self.conn.execute(q).scalar() or 0)

    def dependents(self, pipeline_id: str, instance_ids: Collection[str]) -> list[Instance]:
        # Two indexed lookups (edges by target, then rows by key): a join here made PostgreSQL
        # scan the pipeline's instances on every call.
        ids: set[str] = set()
        for chunk in _chunks(instance_ids):
            ids.update(self.conn.execute(_DEPENDENT_IDS, {"pid": pipeline_id, "ids": chunk}).scalars())
        out = self.find_many(pipeline_id, ids)
        return sorted(out.values(), key=lambda i: (i.scheduled_start, i.id))

    def due(self, now: datetime, *, limit: int = 500) -> list[Instance]:
        q = sa.select(self.t).where(self.t.c.due_at <= now).order_by(self.t.c.due_at).limit(limit)
        return [instance_from_row(r) for r in _dicts(self.conn.execute(q))]

    def _ready(self, queues: Collection[str], now: datetime) -> list[Any]:
        """The conditions of a claimable instance: waiting for a runner on one of `queues`,
        ready by `now`, in a SCHEDULED pipeline (joined as tr_pipelines)."""
        exact = [q for q in queues if not q.endswith("*")]
        prefixes = [q[:-1] for q in queues if q.endswith("*")]
        match: list[sa.ColumnElement[bool]] = [self.t.c.queue.in_(exact)] if exact else []
        match += [self.t.c.queue.startswith(p, autoescape=True) for p in prefixes]
        return [
            # A literal, so that PostgreSQL's generic plans still use the partial index.
            self.t.c.status == sa.literal_column("'WAITING_FOR_RUNNER'"),
            sa.or_(*match),
            sa.or_(self.t.c.ready_at.is_(None), self.t.c.ready_at <= now),
            schema.pipelines.c.state == PipelineState.SCHEDULED.value,
        ]

    def claim_next(
        self, queues: Collection[str], now: datetime, *, owner: str | None = None
    ) -> Instance | None:
        if not queues:
            return None
        p = schema.pipelines
        q = (
            sa.select(self.t)
            .join(p, p.c.id == self.t.c.pipeline_id)
            .where(*self._ready(queues, now))
            .order_by(self.t.c.scheduled_start, self.t.c.id)
            .limit(1)
        )
        if owner is not None:
            q = q.where(p.c.owner == owner)
        if self.tx.pg:
            q = q.with_for_update(skip_locked=True, of=self.t)
        row = self.conn.execute(q).first()
        return instance_from_row(row._mapping) if row else None

    def ready_owners(self, queues: Collection[str], now: datetime) -> dict[str, datetime | None]:
        if not queues:
            return {}
        p = schema.pipelines
        # Few rows: maxActiveInstances keeps each component's waiting-for-runner set small.
        q = (
            sa.select(p.c.owner, sa.func.min(self.t.c.ready_at))
            .select_from(self.t.join(p, p.c.id == self.t.c.pipeline_id))
            .where(*self._ready(queues, now))
            .group_by(p.c.owner)
        )
        return {owner: ready for owner, ready in self.conn.execute(q)}

    def created_since(self, owner: str, since: datetime) -> int:
        p = schema.pipelines
        q = (
            sa.select(sa.func.count())
            .select_from(self.t.join(p, p.c.id == self.t.c.pipeline_id))
            .where(p.c.owner == owner, self.t.c.created_at >= since)
        )
        return int(self.conn.execute(q).scalar() or 0)

    def page(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[Instance]:
        q = _page_query(self.t, [self.t], pipeline_id, after, limit, where)
        return [instance_from_row(r) for r in _dicts(self.conn.execute(q))]

    def page_ids(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[str]:
        q = _page_query(self.t, [self.t.c.id], pipeline_id, after, limit, where)
        return list(self.conn.execute(q).scalars())

    def listing(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[tuple[Any, ...]]:
        t = self.t
        # Raw column values (no per-value type processing): times become text straight from
        # what the database holds, and of the spec (JSON text) only three keys are kept.
        raw = [sa.type_coerce(t.c[name], sa.Text).label(name) for name in LISTING_FIELDS[:-3]]
        q = _page_query(
            t, [*raw, sa.type_coerce(t.c.spec, sa.Text).label("spec")], pipeline_id, after, limit, where
        )
        loads, dp = orjson.loads, schema.dp_text
        out = []
        for row in self.conn.execute(q).fetchall():
            (*head, start, end, started, ended, attempts, tries, resource, version, group, error, head_attempt,
             cascade, deps, preconditions, spec) = row  # fmt: skip
            spec = loads(spec)
            out.append(
                (
                    *head,
                    dp(start),
                    dp(end),
                    dp(started),
                    dp(ended),
                    attempts,
                    tries,
                    resource,
                    version,
                    group,
                    error,
                    head_attempt,
                    cascade,
                    () if deps == "[]" else tuple(loads(deps)),
                    () if preconditions == "[]" else tuple(loads(preconditions)),
                    spec.get("inputs") or (),
                    spec.get("outputs") or (),
                    spec.get("node"),
                )
            )
        return out

    def periods(
        self,
        pipeline_id: str,
        *,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 100,
    ) -> list[tuple[datetime, datetime]]:
        t = self.t
        q = sa.select(t.c.scheduled_start, t.c.scheduled_end).where(t.c.pipeline_id == pipeline_id)
        if since is not None:
            q = q.where(t.c.scheduled_start >= since)
        if before is not None:
            q = q.where(t.c.scheduled_start < before)
        q = q.distinct().order_by(t.c.scheduled_start.desc(), t.c.scheduled_end.desc()).limit(limit)
        return [(s, e) for s, e in self.conn.execute(q)]

    def latest_ended(
        self, pipeline_id: str, *, category: str | None = None
    ) -> tuple[str, Status, datetime] | None:
        if category is None:
            row = self.conn.execute(_ENDED, {"pid": pipeline_id}).first()
        else:
            row = self.conn.execute(_ENDED_IN_CATEGORY, {"pid": pipeline_id, "category": category}).first()
        return (row[0], Status(row[1]), row[2]) if row else None

    def count(self, pipeline_id: str | None = None) -> dict[Status, int]:
        q = sa.select(self.t.c.status, sa.func.count()).group_by(self.t.c.status)
        if pipeline_id is not None:
            q = q.where(self.t.c.pipeline_id == pipeline_id)
        return {Status(s): int(n) for s, n in self.conn.execute(q)}


class SqlAttempts(_Repo, Attempts):
    t = schema.attempts

    def add(self, attempt: Attempt) -> Attempt:
        self._add(self.t, _row_of(attempt), f"attempt {attempt.id!r}")
        return attempt

    def find(self, pipeline_id: str, attempt_id: str) -> Attempt | None:
        row = self.conn.execute(_ATTEMPT, {"pid": pipeline_id, "oid": attempt_id}).first()
        return attempt_from_row(row._mapping) if row else None

    def by_task(self, task_id: str) -> Attempt | None:
        row = self.conn.execute(_ATTEMPT_BY_TASK, {"task": task_id}).first()
        return attempt_from_row(row._mapping) if row else None

    def for_instance(self, pipeline_id: str, instance_id: str) -> list[Attempt]:
        q = (
            sa.select(self.t)
            .where(self.t.c.pipeline_id == pipeline_id, self.t.c.instance_id == instance_id)
            .order_by(self.t.c.number)
        )
        return [attempt_from_row(r) for r in _dicts(self.conn.execute(q))]

    def update(
        self,
        pipeline_id: str,
        attempt_id: str,
        *,
        expect_status: Collection[Status] | None = None,
        detail: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> Attempt | None:
        done = self._cas(self.t, pipeline_id, attempt_id, expect_status, changes)
        if done is None:
            return None
        old_status, values = done
        new = attempt_from_row(values)
        if new.status != old_status:
            fields = {"object_id": attempt_id, "instance": new.instance_id}
            self._changed(AttemptStatusChanged, pipeline_id, old_status, new.status, detail, **fields)
        return new

    def expired(self, now: datetime, *, limit: int = 100) -> list[Attempt]:
        q = (
            sa.select(self.t)
            .where(self.t.c.status == sa.literal_column("'RUNNING'"), self.t.c.lease_expires_at < now)
            .order_by(self.t.c.lease_expires_at)
            .limit(limit)
        )
        return [attempt_from_row(r) for r in _dicts(self.conn.execute(q))]

    def running(self, pipeline_id: str | None = None) -> list[Attempt]:
        q = sa.select(self.t).where(self.t.c.status == sa.literal_column("'RUNNING'"))
        if pipeline_id is not None:
            q = q.where(self.t.c.pipeline_id == pipeline_id)
        return [attempt_from_row(r._mapping) for r in self.conn.execute(q.order_by(self.t.c.id))]

    def running_by_owner(self, *, exclude_queues: Collection[str] = ()) -> dict[str, int]:
        p = schema.pipelines
        q = (
            sa.select(p.c.owner, sa.func.count())
            .select_from(self.t.join(p, p.c.id == self.t.c.pipeline_id))
            .where(self.t.c.status == sa.literal_column("'RUNNING'"))
            .group_by(p.c.owner)
        )
        if exclude_queues:
            q = q.where(sa.or_(self.t.c.queue.is_(None), self.t.c.queue.not_in(list(exclude_queues))))
        return {owner: int(n) for owner, n in self.conn.execute(q)}

    def find_many(self, pipeline_id: str, attempt_ids: Collection[str]) -> dict[str, Attempt]:
        out: dict[str, Attempt] = {}
        for chunk in _chunks(attempt_ids):
            for row in _dicts(self.conn.execute(_ATTEMPTS_IN, {"pid": pipeline_id, "ids": chunk})):
                attempt = attempt_from_row(row)
                out[attempt.id] = attempt
        return out

    def page(
        self, pipeline_id: str, *, after: str | None = None, limit: int = 100, where: Sequence[Where] = ()
    ) -> list[Attempt]:
        q = _page_query(self.t, [self.t], pipeline_id, after, limit, where)
        return [attempt_from_row(r) for r in _dicts(self.conn.execute(q))]
