"""SQL repositories of the records processes coordinate through: access keys (API
authentication), named leases, task runner heartbeats (see abc.py for the contracts)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from tailrace.errors import NotFoundError
from tailrace.state import schema
from tailrace.state.abc import AccessKey, AccessKeys, Leases, TaskRunner, TaskRunners
from tailrace.state.rows import _Repo, _row_of


class SqlAccessKeys(_Repo, AccessKeys):
    t = schema.access_keys

    def add(self, key: AccessKey) -> AccessKey:
        self._add(self.t, _row_of(key), f"access key {key.access_key_id!r}")
        return key

    def find(self, access_key_id: str) -> AccessKey | None:
        row = self.conn.execute(sa.select(self.t).where(self.t.c.access_key_id == access_key_id)).first()
        return AccessKey(**dict(row._mapping)) if row else None

    def list(self, owner: str | None = None) -> list[AccessKey]:
        q = sa.select(self.t)
        if owner is not None:
            q = q.where(self.t.c.owner == owner)
        return [AccessKey(**dict(r._mapping)) for r in self.conn.execute(q.order_by(self.t.c.access_key_id))]

    def set_active(self, access_key_id: str, active: bool) -> None:
        result = self.conn.execute(
            sa.update(self.t).where(self.t.c.access_key_id == access_key_id).values(active=active)
        )
        if result.rowcount == 0:
            raise NotFoundError(f"access key {access_key_id!r} does not exist")

    def set_stored_secret(self, access_key_id: str, stored: str) -> None:
        result = self.conn.execute(
            sa.update(self.t).where(self.t.c.access_key_id == access_key_id).values(secret_access_key=stored)
        )
        if result.rowcount == 0:
            raise NotFoundError(f"access key {access_key_id!r} does not exist")


class SqlLeases(_Repo, Leases):
    t = schema.leases

    def acquire(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        stmt = self._insert(self.t).values(name=name, holder=holder, expires_at=until)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.t.c.name],
            set_={"holder": holder, "expires_at": until},
            where=sa.or_(self.t.c.holder == holder, self.t.c.expires_at <= now),
        ).returning(self.t.c.holder)
        return self.conn.execute(stmt).first() is not None

    def release(self, name: str, holder: str) -> None:
        self.conn.execute(sa.delete(self.t).where(self.t.c.name == name, self.t.c.holder == holder))

    def holder(self, name: str, *, now: datetime) -> str | None:
        q = sa.select(self.t.c.holder).where(self.t.c.name == name, self.t.c.expires_at > now)
        return self.conn.execute(q).scalar()


class SqlTaskRunners(_Repo, TaskRunners):
    t = schema.task_runners

    def beat(self, runner: TaskRunner) -> TaskRunner:
        stmt = self._insert(self.t).values(**_row_of(runner))
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.t.c.runner_id],
            set_={
                "worker_group": runner.worker_group,
                "hostname": runner.hostname,
                "heartbeat_at": runner.heartbeat_at,
            },
        ).returning(*self.t.c)
        row = self.conn.execute(stmt).one()
        return TaskRunner(**dict(row._mapping))

    def list(self) -> list[TaskRunner]:
        rows = self.conn.execute(sa.select(self.t).order_by(self.t.c.runner_id))
        return [TaskRunner(**dict(r._mapping)) for r in rows]
