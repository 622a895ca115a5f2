"""Engines by name: the built-in ones, loaded when first asked for, and third-party ones
declared in the `tailrace.engines` entry-point group:

    [project.entry-points."tailrace.engines"]
    myengine = "mypackage.engine:MyEngine"     # a tailrace.engines.abc.ScriptEngine subclass

A built-in name wins over an entry point of the same name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable, Iterable, Mapping

from tailrace.engines.abc import Capabilities, EngineSetup, ScriptEngine
from tailrace.errors import ConfigError, did_you_mean

ENTRY_POINT_GROUP = "tailrace.engines"
DEFAULT_ENGINE = "duckdb"
BUILTINS: Mapping[str, str] = {
    "duckdb": "tailrace.engines.duckdb:DuckDBEngine",
    "spark": "tailrace.engines.spark.engine:SparkEngine",
}


class UnknownEngine(ConfigError, LookupError):
    """No engine has this name."""


class EngineLoadError(ConfigError):
    """An engine is declared but cannot be loaded (import failed, or not a ScriptEngine)."""


def _installed() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


class EngineRegistry:
    """Engine classes by name; `create(name)` builds one on this installation's `setup`."""

    def __init__(
        self,
        setup: EngineSetup | None = None,
        *,
        builtins: Mapping[str, str] = BUILTINS,
        entry_points: Callable[[], Iterable[importlib.metadata.EntryPoint]] = _installed,
    ) -> None:
        self.setup = setup
        self._builtins = dict(builtins)
        self._entry_points = entry_points
        self._plugins: dict[str, importlib.metadata.EntryPoint] | None = None
        self._loaded: dict[str, type[ScriptEngine]] = {}
        self._lock = threading.RLock()

    def register(self, engine: type[ScriptEngine], name: str | None = None) -> None:
        """Add an engine class directly (embedding, tests); replaces one of the same name."""
        with self._lock:
            self._loaded[name or engine.name] = engine

    def _declared(self) -> dict[str, importlib.metadata.EntryPoint]:
        if self._plugins is None:
            self._plugins = {ep.name: ep for ep in self._entry_points()}
        return self._plugins

    def names(self) -> list[str]:
        """Every engine name, sorted; nothing is imported to list them."""
        with self._lock:
            return sorted({*self._loaded, *self._builtins, *self._declared()})

    def get(self, name: str) -> type[ScriptEngine]:
        """The engine class. :raises UnknownEngine: naming the closest name and every name.
        :raises EngineLoadError: when its module cannot be imported or it is no ScriptEngine."""
        with self._lock:
            found = self._loaded.get(name)
            if found is not None:
                return found
            if name in self._builtins:
                module, _, attr = self._builtins[name].partition(":")
                where = f"built-in engine '{name}' ({self._builtins[name]})"
                loader: Callable[[], object] = lambda: getattr(importlib.import_module(module), attr)  # noqa: E731
            elif name in self._declared():
                point = self._declared()[name]
                where = f"engine '{name}' of entry point group {ENTRY_POINT_GROUP} ({point.value})"
                loader = point.load
            else:
                known = sorted({*self._loaded, *self._builtins, *self._declared()})
                raise UnknownEngine(
                    f"unknown engine '{name}'.{did_you_mean(name, known)} Engines: {', '.join(known)}"
                )
            try:
                engine = loader()
            except Exception as exc:  # a broken plugin is a configuration problem, said clearly
                raise EngineLoadError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
            if not (isinstance(engine, type) and issubclass(engine, ScriptEngine)):
                raise EngineLoadError(f"{where} is {engine!r}, not a tailrace.engines.abc.ScriptEngine")
            self._loaded[name] = engine
            return engine

    def capabilities(self, name: str) -> Capabilities:
        return self.get(name).capabilities

    def create(self, name: str) -> ScriptEngine:
        """A new engine on this registry's setup (the caller closes it)."""
        engine = self.get(name)
        if self.setup is None:
            raise ConfigError(f"engine '{name}' cannot run here: the engine registry has no setup")
        return engine(self.setup)
