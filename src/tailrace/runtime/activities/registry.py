"""Activity and precondition kinds by type name: the one registry the attempt boundary reads.

Built-in kinds live one module per kind (BUILTIN_MODULES); each module has a
`register(registry)` function that the registry calls, so nothing registers by being imported.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tailrace.errors import TailraceError, did_you_mean
from tailrace.runtime.context import AttemptContext, AttemptOutcome

Runner = Callable[[AttemptContext], AttemptOutcome]

BUILTIN_MODULES: tuple[str, ...] = (
    "tailrace.runtime.activities.shell_command",
    "tailrace.runtime.activities.copy",
    "tailrace.runtime.activities.hive",
    "tailrace.runtime.activities.emr",
    "tailrace.runtime.activities.sql",
    "tailrace.runtime.activities.preconditions",
    "tailrace.runtime.activities.redshift",
    "tailrace.runtime.activities.dynamodb",
)


class Role(StrEnum):
    ACTIVITY = "activity"
    PRECONDITION = "precondition"


class UnknownKind(TailraceError, LookupError):
    """No activity or precondition of this type can run here."""


@dataclass(frozen=True, kw_only=True)
class Kind:
    type_name: str
    role: Role
    run: Runner


class ActivityRegistry:
    """Runners of activities and preconditions by (type name, role)."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def register(self, type_name: str, run: Runner, *, role: Role = Role.ACTIVITY) -> None:
        """Add a kind. :raises TailraceError: when the type name is taken (a kind is replaced
        on purpose by building another registry, never by accident)."""
        if type_name in self._kinds:
            raise TailraceError(f"{self._kinds[type_name].role} type '{type_name}' is registered twice")
        self._kinds[type_name] = Kind(type_name=type_name, role=role, run=run)

    def kinds(self, role: Role | None = None) -> list[str]:
        """Type names (of one role), sorted."""
        return sorted(k.type_name for k in self._kinds.values() if role is None or k.role is role)

    def lookup(self, type_name: str, role: Role = Role.ACTIVITY) -> Runner:
        """The runner. :raises UnknownKind: naming the closest kind and every kind of the role."""
        kind = self._kinds.get(type_name)
        if kind is not None and kind.role is role:
            return kind.run
        known = self.kinds(role)
        raise UnknownKind(
            f"{role} type '{type_name}' cannot run on this installation.{did_you_mean(type_name, known)} "
            f"{role.capitalize()} types that run here: {', '.join(known)} (see docs/definitions.md)"
        )


def load(modules: tuple[str, ...] = BUILTIN_MODULES) -> ActivityRegistry:
    """A registry of the kinds that `modules` register."""
    registry = ActivityRegistry()
    for name in modules:
        importlib.import_module(name).register(registry)
    return registry


@functools.cache
def builtin_registry() -> ActivityRegistry:
    """The built-in kinds (loaded once per process)."""
    return load()
