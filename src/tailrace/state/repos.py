"""SQL repositories of the state store (see abc.py for each method's contract): pipelines,
definitions and components here; instances and attempts in runrepos.py; rows.py holds what they
share."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tailrace.events.model import (
    ComponentStatusChanged,
    PipelineDeleted,
    PipelineStateChanged,
)
from tailrace.state import schema
from tailrace.state.abc import (
    Component,
    Components,
    Definitions,
    DefinitionVersion,
    ObjectNotFound,
    Pipeline,
    PipelineNotFound,
    Pipelines,
    PipelineState,
    Status,
)
from tailrace.state.rows import (
    _PIPELINE,
    _PIPELINE_LOCKED,
    _PIPELINE_SKIP_LOCKED,
    _PIPELINE_WITH_ENDED,
    _columns,
    _Repo,
    _row_of,
    component_from_row,
    pipeline_from_row,
)


class SqlPipelines(_Repo, Pipelines):
    t = schema.pipelines

    def add(self, pipeline: Pipeline) -> Pipeline:
        self._add(self.t, _row_of(pipeline), f"pipeline {pipeline.id!r} (uniqueId {pipeline.unique_id!r})")
        return pipeline

    def find(self, pipeline_id: str) -> Pipeline | None:
        row = self.conn.execute(_PIPELINE, {"pid": pipeline_id}).first()
        return pipeline_from_row(row._mapping) if row else None

    def find_with_latest_ended(
        self, pipeline_id: str, *, category: str
    ) -> tuple[Pipeline, tuple[str, Status, datetime] | None] | None:
        row = self.conn.execute(_PIPELINE_WITH_ENDED, {"pid": pipeline_id, "category": category}).first()
        if row is None:
            return None
        d = dict(row._mapping)
        last = d.pop("last_ended_id"), d.pop("last_ended_status"), d.pop("last_ended_at")
        return pipeline_from_row(d), (last[0], Status(last[1]), last[2]) if last[0] is not None else None

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
