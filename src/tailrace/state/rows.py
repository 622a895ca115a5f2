"""What the SQL repositories share: rows to records and back, the hot statements built once,
page queries, and the repository base class."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tailrace.events.model import (
    PipelineStateChanged,
    StatusChanged,
)
from tailrace.state import schema
from tailrace.state.abc import (
    Attempt,
    Component,
    DuplicateError,
    HealthStatus,
    Instance,
    ObjectNotFound,
    Pipeline,
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
_ENDED = (
    sa.select(schema.instances.c.id, schema.instances.c.status, schema.instances.c.ended_at)
    .where(schema.instances.c.pipeline_id == sa.bindparam("pid"), schema.instances.c.ended_at.is_not(None))
    .order_by(schema.instances.c.ended_at.desc())
    .limit(1)
)
_ENDED_IN_CATEGORY = _ENDED.where(schema.instances.c.category == sa.bindparam("category"))
# A pipeline with its latest ended instance of a category (LEFT JOIN: none yet is a row too).
_LAST = schema.instances.alias("last_ended")
_LAST_ID = (
    sa.select(schema.instances.c.id)
    .where(
        schema.instances.c.pipeline_id == schema.pipelines.c.id,
        schema.instances.c.ended_at.is_not(None),
        schema.instances.c.category == sa.bindparam("category"),
    )
    .order_by(schema.instances.c.ended_at.desc())
    .limit(1)
    .correlate(schema.pipelines)
    .scalar_subquery()
)
_PIPELINE_WITH_ENDED = (
    sa.select(
        schema.pipelines,
        _LAST.c.id.label("last_ended_id"),
        _LAST.c.status.label("last_ended_status"),
        _LAST.c.ended_at.label("last_ended_at"),
    )
    .select_from(
        schema.pipelines.outerjoin(
            _LAST,
            sa.and_(_LAST.c.pipeline_id == schema.pipelines.c.id, _LAST.c.id == _LAST_ID),
        )
    )
    .where(schema.pipelines.c.id == sa.bindparam("pid"))
)


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
