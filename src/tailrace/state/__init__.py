"""The state store (layer 3): one interface (abc.py) over SQLite and PostgreSQL (sql.py)."""

from __future__ import annotations

from tailrace.clock import Clock
from tailrace.state.abc import (
    LISTING_FIELDS,
    TERMINAL,
    AccessKey,
    Attempt,
    Component,
    Cursor,
    DefinitionVersion,
    DuplicateError,
    HealthStatus,
    Instance,
    ObjectNotFound,
    Pipeline,
    PipelineNotFound,
    PipelineState,
    StateStore,
    Status,
    StoredEvent,
    TaskNotFound,
    TaskRunner,
    Transaction,
    Where,
)
from tailrace.state.engine import create_engine
from tailrace.state.sql import SqlStateStore

__all__ = [
    "LISTING_FIELDS",
    "TERMINAL",
    "AccessKey",
    "Attempt",
    "Component",
    "Cursor",
    "DefinitionVersion",
    "DuplicateError",
    "HealthStatus",
    "Instance",
    "ObjectNotFound",
    "Pipeline",
    "PipelineNotFound",
    "PipelineState",
    "SqlStateStore",
    "StateStore",
    "Status",
    "StoredEvent",
    "TaskNotFound",
    "TaskRunner",
    "Transaction",
    "Where",
    "create_engine",
    "open_store",
]


def open_store(url: str, *, clock: Clock | None = None) -> SqlStateStore:
    """A migrated store over a new engine for `url` (sqlite:///PATH or postgresql://...)."""
    return SqlStateStore(create_engine(url), clock=clock)
