"""The state store (layer 3): one interface (abc.py) over SQLite and PostgreSQL (sql.py).

The names below load on first use (PEP 562): `tailrace hive` needs only `state.engine`, and
importing the store's schema, repositories and migrations with it would add to its start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOME = {"create_engine": "tailrace.state.engine", "SqlStateStore": "tailrace.state.sql"}


def __getattr__(name: str) -> Any:
    if name not in __all__ or name == "open_store":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME.get(name, "tailrace.state.abc")), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def open_store(url: str, *, clock: Clock | None = None) -> SqlStateStore:
    """A migrated store over a new engine for `url` (sqlite:///PATH or postgresql://...)."""
    from tailrace.state.engine import create_engine
    from tailrace.state.sql import SqlStateStore

    return SqlStateStore(create_engine(url), clock=clock)
