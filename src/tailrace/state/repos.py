"""SQL repositories of the state store (see abc.py for each method's contract)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tailrace.events.model import (
    AttemptStatusChanged,
    ComponentStatusChanged,
    InstanceStatusChanged,
    PipelineDeleted,
    PipelineStateChanged,
    StatusChanged,
)
from tailrace.state import schema
from tailrace.state.abc import (
    LISTING_FIELDS,
    Attempt,
    Attempts,
    Component,
    Components,
    Definitions,
    DefinitionVersion,
    DuplicateError,
    HealthStatus,
    Instance,
    Instances,
    ObjectNotFound,
    Pipeline,
    PipelineNotFound,
    Pipelines,
    PipelineState,
    Status,
    Where,
)

if TYPE_CHECKING:
    from tailrace.state.sql import SqlTransaction

R = TypeVar("R")
CHUNK = 500  # ids per IN (...) list


def _chunks(items: Collection[str]) -> Iterator[list[str]]:
    seq = list(items)
    for i in range(0, len(seq), CHUNK):
        yield seq[i : i + CHUNK]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _row_of(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _columns(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in changes.items()}


def _opt(enum: type[Any], value: Any) -> Any:
    return None if value is None else enum(value)


def pipeline_from_row(m: Mapping[Any, Any]) -> Pipeline:
    d = dict(m)
    d["state"] = PipelineState(d["state"])
    d["health_status"] = _opt(HealthStatus, d["health_status"])
    return Pipeline(**d)


_STATUS = Status._value2member_map_  # Status(text), without the enum call's overhead


def _dicts(result: sa.CursorResult[Any]) -> list[dict[str, Any]]:
    """All rows of a result as fresh dicts (bulk reads: a quarter of dict(row._mapping)'s cost)."""
    rows = result.fetchall()
    keys = tuple(result.keys())
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _builder(cls: type[R]) -> Callable[[dict[str, Any]], R]:
    """Build `cls` (a frozen slots dataclass) from a dict holding every field: the generated
    __init__ sets each field through object.__setattr__, which is most of the cost of reading
    thousands of rows; this sets the slots directly, then runs __post_init__ as __init__ would."""
    setters = tuple((f.name, getattr(cls, f.name).__set__) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    post_init = getattr(cls, "__post_init__", None)
    new = object.__new__

    def build(d: dict[str, Any]) -> R:
        if len(d) != len(setters):
            return cls(**d)  # not a whole row: let the constructor say what is wrong
        obj = new(cls)
        for name, set_ in setters:
            set_(obj, d[name])
        if post_init is not None:
            post_init(obj)
        return obj

    return build


_new_instance = _builder(Instance)
_new_attempt = _builder(Attempt)


def instance_from_row(m: Mapping[Any, Any]) -> Instance:
    d = m if m.__class__ is dict else dict(m)  # a dict from _dicts is the caller's to give away
    d["status"] = _STATUS[d["status"]]
    d["depends_on"] = tuple(d["depends_on"])
    d["preconditions"] = tuple(d["preconditions"])
    return _new_instance(d)


def attempt_from_row(m: Mapping[Any, Any]) -> Attempt:
    d = m if m.__class__ is dict else dict(m)
    d["status"] = _STATUS[d["status"]]
    return _new_attempt(d)


def component_from_row(m: Mapping[Any, Any]) -> Component:
    d = dict(m)
    d["status"] = Status(d["status"])
    return Component(**d)


def _by_key(table: sa.Table) -> sa.Select[Any]:
    return sa.select(table).where(
        table.c.pipeline_id == sa.bindparam("pid"), table.c.id == sa.bindparam("oid")
    )


# Hot statements are built once (SQLAlchemy caches their compiled form; building the expression
# anew on every call costs more than running it on SQLite).
_INSTANCE = _by_key(schema.instances)
_INSTANCES_IN = sa.select(schema.instances).where(
    schema.instances.c.pipeline_id == sa.bindparam("pid"),
    schema.instances.c.id.in_(sa.bindparam("ids", expanding=True)),
)
_DEPENDENT_IDS = sa.select(schema.instance_deps.c.instance_id).where(
    schema.instance_deps.c.pipeline_id == sa.bindparam("pid"),
    schema.instance_deps.c.depends_on.in_(sa.bindparam("ids", expanding=True)),
)
_ATTEMPT = _by_key(schema.attempts)
_ATTEMPTS_IN = sa.select(schema.attempts).where(
    schema.attempts.c.pipeline_id == sa.bindparam("pid"),
    schema.attempts.c.id.in_(sa.bindparam("ids", expanding=True)),
)
_ATTEMPT_BY_TASK = sa.select(schema.attempts).where(schema.attempts.c.task_id == sa.bindparam("task"))
_PIPELINE = sa.select(schema.pipelines).where(schema.pipelines.c.id == sa.bindparam("pid"))
_PIPELINE_LOCKED = _PIPELINE.with_for_update()
_PIPELINE_SKIP_LOCKED = _PIPELINE.with_for_update(skip_locked=True)


PAGE_COLUMNS = {
    "tr_instances": frozenset({"status", "component_id", "scheduled_start", "started_at"}),
    "tr_attempts": frozenset({"status", "instance_id", "started_at"}),
}
"""Columns page queries filter on (Where.column), per table."""


def _page_query(
    table: sa.Table,
    columns: Sequence[Any],
    pipeline_id: str,
    after: str | None,
    limit: int,
    where: Sequence[Where],
) -> sa.Select[Any]:
    q = sa.select(*columns).where(table.c.pipeline_id == pipeline_id)
    if after is not None:
        q = q.where(table.c.id > after)
    allowed = PAGE_COLUMNS[table.name]
    for w in where:
        if w.column not in allowed:
            raise ValueError(f"{table.name} pages filter on {', '.join(sorted(allowed))}, not {w.column!r}")
        col = table.c[w.column]
        if w.op == "in":
            q = q.where(col.in_([_plain(v) for v in w.value]))
        elif w.op == "ge":
            q = q.where(col >= w.value)
        elif w.op == "lt":
            q = q.where(col < w.value)
        else:
            raise ValueError(f"Where.op must be 'in', 'ge' or 'lt', not {w.op!r}")
    return q.order_by(table.c.id).limit(limit)


class _Repo:
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    @property
    def conn(self) -> sa.Connection:
        return self.tx.conn

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.tx.pg else sqlite.insert)(table)

    def _locked(self, query: sa.Select[Any], *, skip_locked: bool = False) -> sa.Select[Any]:
        # SQLite: the transaction already holds the database's write lock (BEGIN IMMEDIATE).
        return query.with_for_update(skip_locked=skip_locked) if self.tx.pg else query

    def _add(self, table: sa.Table, row: dict[str, Any], what: str) -> None:
        # ON CONFLICT DO NOTHING: a duplicate leaves the transaction usable (PostgreSQL would
        # abort it on a unique violation) and costs no savepoint.
        pk = next(iter(table.primary_key.columns))
        stmt = self._insert(table).values(**row).on_conflict_do_nothing().returning(pk)
        if self.conn.execute(stmt).first() is None:
            raise DuplicateError(f"{what} already exists")

    def _cas(
        self,
        table: sa.Table,
        pipeline_id: str,
        oid: str,
        expect_status: Collection[Status] | None,
        changes: Mapping[str, Any],
    ) -> tuple[Status, dict[str, Any]] | None:
        """Compare-and-set one row: (old status, new row), or None when its status is not expected.

        PostgreSQL does it in one round trip (UPDATE ... FROM a locking read of the old status);
        SQLite reads, checks and writes under its write lock.
        """
        key = sa.and_(table.c.pipeline_id == pipeline_id, table.c.id == oid)
        cols = _columns(changes)
        if self.tx.pg:
            old = (
                sa.select(table.c.pipeline_id, table.c.id, table.c.status.label("old_status"))
                .where(key)
                .with_for_update()
                .subquery("old")
            )
            match = old.c.old_status.in_([s.value for s in expect_status]) if expect_status else sa.true()
            joined = sa.and_(table.c.pipeline_id == old.c.pipeline_id, table.c.id == old.c.id)
            stmt = sa.update(table).where(key, joined, match).values(**cols)
            row = self.conn.execute(stmt.returning(*table.c, old.c.old_status)).first()
            if row is None:
                if self.conn.execute(sa.select(table.c.status).where(key)).first() is None:
                    raise ObjectNotFound(pipeline_id, oid, table.name.removeprefix("tr_").rstrip("s"))
                return None
            values = dict(row._mapping)
            return Status(values.pop("old_status")), values
        found = self.conn.execute(sa.select(table).where(key)).first()
        if found is None:
            raise ObjectNotFound(pipeline_id, oid, table.name.removeprefix("tr_").rstrip("s"))
        values = dict(found._mapping)
        if expect_status is not None and Status(values["status"]) not in expect_status:
            return None
        self.conn.execute(sa.update(table).where(key).values(**cols))
        values.update(cols)
        return Status(found.status), values

    def _changed(
        self,
        kind: type[PipelineStateChanged | StatusChanged],
        pid: str,
        old: Any,
        new: Any,
        detail: Any,
        **fields: Any,
    ) -> None:
        """Append the typed event of a status change (statuses as their text)."""
        at = self.tx.now()
        self.tx.events.append(
            kind(at=at, pipeline_id=pid, old=str(old), new=str(new), detail=detail or {}, **fields)
        )


class SqlPipelines(_Repo, Pipelines):
    t = schema.pipelines

    def add(self, pipeline: Pipeline) -> Pipeline:
        self._add(self.t, _row_of(pipeline), f"pipeline {pipeline.id!r} (uniqueId {pipeline.unique_id!r})")
        return pipeline

    def find(self, pipeline_id: str) -> Pipeline | None:
        row = self.conn.execute(_PIPELINE, {"pid": pipeline_id}).first()
        return pipeline_from_row(row._mapping) if row else None

    def find_by_unique_id(self, owner: str, unique_id: str) -> Pipeline | None:
        q = sa.select(self.t).where(self.t.c.owner == owner, self.t.c.unique_id == unique_id)
        row = self.conn.execute(q).first()
        return pipeline_from_row(row._mapping) if row else None

    def lock(self, pipeline_id: str, *, skip_locked: bool = False) -> Pipeline | None:
        q = _PIPELINE if not self.tx.pg else _PIPELINE_SKIP_LOCKED if skip_locked else _PIPELINE_LOCKED
        row = self.conn.execute(q, {"pid": pipeline_id}).first()
        return pipeline_from_row(row._mapping) if row else None

    def update(
        self, pipeline_id: str, *, detail: Mapping[str, Any] | None = None, **changes: Any
    ) -> Pipeline:
        old = self.lock(pipeline_id)
        if old is None:
            raise PipelineNotFound(pipeline_id)
        changes.setdefault("updated_at", self.tx.now())
        new = dataclasses.replace(old, **changes)
        self.conn.execute(sa.update(self.t).where(self.t.c.id == pipeline_id).values(**_columns(changes)))
        if new.state != old.state:
            self._changed(PipelineStateChanged, pipeline_id, old.state, new.state, detail, owner=old.owner)
        return new

    def delete(self, pipeline_id: str) -> None:
        if self.find(pipeline_id) is None:
            raise PipelineNotFound(pipeline_id)
        for table in (
            schema.attempts,
            schema.instance_deps,
            schema.instances,
            schema.components,
            schema.definitions,
        ):
            self.conn.execute(sa.delete(table).where(table.c.pipeline_id == pipeline_id))
        self.conn.execute(sa.delete(self.t).where(self.t.c.id == pipeline_id))

    def was_deleted(self, pipeline_id: str) -> bool:
        e = schema.events
        q = sa.select(e.c.id).where(e.c.pipeline_id == pipeline_id, e.c.type == PipelineDeleted.TYPE).limit(1)
        return self.conn.execute(q).first() is not None

    def page(self, *, owner: str | None = None, after: str | None = None, limit: int = 100) -> list[Pipeline]:
        q = sa.select(self.t)
        if owner is not None:
            q = q.where(self.t.c.owner == owner)
        if after is not None:
            q = q.where(self.t.c.id > after)
        rows = self.conn.execute(q.order_by(self.t.c.id).limit(limit))
        return [pipeline_from_row(r._mapping) for r in rows]

    def due(self, now: datetime, *, limit: int = 100) -> list[str]:
        scheduled = (
            sa.select(self.t.c.id)
            .where(self.t.c.state == PipelineState.SCHEDULED.value, self.t.c.next_window_at <= now)
            .order_by(self.t.c.next_window_at)
            .limit(limit)
        )
        draining = (
            sa.select(self.t.c.id).where(self.t.c.state == PipelineState.DEACTIVATING.value).limit(limit)
        )
        ids = list(self.conn.execute(scheduled).scalars())
        ids += [i for i in self.conn.execute(draining).scalars() if i not in ids]
        return ids

    def count_in_state(self, owner: str, states: Collection[PipelineState]) -> int:
        q = sa.select(sa.func.count()).where(
            self.t.c.owner == owner, self.t.c.state.in_([s.value for s in states])
        )
        return int(self.conn.execute(q).scalar() or 0)


class SqlDefinitions(_Repo, Definitions):
    t = schema.definitions

    def add(self, pipeline_id: str, wire: Mapping[str, Any], *, at: datetime) -> DefinitionVersion:
        q = sa.select(sa.func.max(self.t.c.version)).where(self.t.c.pipeline_id == pipeline_id)
        version = int(self.conn.execute(q).scalar() or 0) + 1
        record = DefinitionVersion(pipeline_id=pipeline_id, version=version, wire=wire, created_at=at)
        self._add(self.t, _row_of(record), f"definition version {version} of {pipeline_id!r}")
        return record

    def find(self, pipeline_id: str, version: int) -> DefinitionVersion | None:
        q = sa.select(self.t).where(self.t.c.pipeline_id == pipeline_id, self.t.c.version == version)
        row = self.conn.execute(q).first()
        return DefinitionVersion(**dict(row._mapping)) if row else None


class SqlComponents(_Repo, Components):
    t = schema.components

    def replace(self, pipeline_id: str, components: Sequence[Component]) -> None:
        self.conn.execute(sa.delete(self.t).where(self.t.c.pipeline_id == pipeline_id))
        if components:
            self.conn.execute(sa.insert(self.t), [_row_of(c) for c in components])

    def list(self, pipeline_id: str) -> list[Component]:
        q = sa.select(self.t).where(self.t.c.pipeline_id == pipeline_id).order_by(self.t.c.id)
        return [component_from_row(r._mapping) for r in self.conn.execute(q)]

    def update(
        self, pipeline_id: str, component_id: str, *, status: Status, detail: Mapping[str, Any] | None = None
    ) -> Component:
        where = sa.and_(self.t.c.pipeline_id == pipeline_id, self.t.c.id == component_id)
        row = self.conn.execute(self._locked(sa.select(self.t).where(where))).first()
        if row is None:
            raise ObjectNotFound(pipeline_id, component_id, "component")
        old = component_from_row(row._mapping)
        self.conn.execute(sa.update(self.t).where(where).values(status=status.value))
        if old.status != status:
            self._changed(
                ComponentStatusChanged, pipeline_id, old.status, status, detail, object_id=component_id
            )
        return dataclasses.replace(old, status=status)


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
        c = self.t.c
        q = sa.select(c.id, c.status, c.ended_at).where(c.pipeline_id == pipeline_id, c.ended_at.is_not(None))
        if category is not None:
            q = q.where(c.category == category)
        row = self.conn.execute(q.order_by(c.ended_at.desc()).limit(1)).first()
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
