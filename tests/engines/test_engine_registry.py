"""Engines by name: built-ins loaded lazily, third-party engines from the `tailrace.engines`
entry-point group (a real distribution on sys.path), unknown names refused with "did you mean"."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from tailrace.config import Settings, load_settings
from tailrace.engines.abc import EngineSetup, ScriptEngine
from tailrace.engines.metastore import MemoryMetastore
from tailrace.engines.registry import ENTRY_POINT_GROUP, EngineLoadError, EngineRegistry, UnknownEngine
from tailrace.errors import ConfigError
from tailrace.services import build_services
from tailrace.storage import Storage

TOY = """
from tailrace.engines.abc import Capabilities, ScriptEngine, ScriptResult


class ToyEngine(ScriptEngine):
    name = "toy"
    capabilities = Capabilities(distributed=True, spills_to_disk=True, supports_udtf=False, max_threads=64)

    def run(self, request):
        return ScriptResult(source=request.source)

    def interrupt(self):
        pass


NOT_AN_ENGINE = object()
"""


@pytest.fixture
def toy_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A third-party package installed the way pip leaves it: a module and its dist-info."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "tailrace_toy_engine.py").write_text(TOY)
    info = site / "tailrace_toy_engine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tailrace-toy-engine\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [{ENTRY_POINT_GROUP}]
            toy = tailrace_toy_engine:ToyEngine
            broken = tailrace_toy_engine:NOT_AN_ENGINE
            missing = tailrace_toy_engine_gone:Engine
            duckdb = tailrace_toy_engine:ToyEngine
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def setup(tmp_path: Path) -> EngineSetup:
    metastore = MemoryMetastore()
    return EngineSetup(storage=Storage(home=tmp_path / "home"), metastore_for=lambda _o: metastore)


def test_an_unknown_engine_is_refused_with_the_closest_name_and_every_name():
    registry = EngineRegistry()
    with pytest.raises(UnknownEngine) as caught:
        registry.get("duckbd")
    assert str(caught.value) == "unknown engine 'duckbd'. Did you mean 'duckdb'? Engines: duckdb, spark"
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, LookupError)
    with pytest.raises(UnknownEngine, match=r"^unknown engine 'hadoop'\. Engines: duckdb, spark$"):
        registry.create("hadoop")


def test_built_ins_are_listed_without_importing_them_and_loaded_when_asked_for():
    registry = EngineRegistry(builtins={"lazy": "tailrace_no_such_module:Engine", "duckdb": "x:y"})
    # Listing imported nothing (it would fail); installed entry points (spark) may list beside them.
    assert [n for n in registry.names() if n in ("duckdb", "lazy")] == ["duckdb", "lazy"]
    with pytest.raises(
        EngineLoadError, match=r"built-in engine 'lazy' .* cannot be loaded: ModuleNotFoundError"
    ):
        registry.get("lazy")


def test_third_party_engines_come_from_the_entry_point_group(toy_distribution, tmp_path):
    registry = EngineRegistry(setup(tmp_path))
    assert registry.names() == ["broken", "duckdb", "missing", "spark", "toy"]
    toy = registry.get("toy")
    assert toy.__module__ == "tailrace_toy_engine" and issubclass(toy, ScriptEngine)
    assert registry.capabilities("toy").max_threads == 64
    engine = registry.create("toy")
    assert isinstance(engine, toy) and engine.setup is registry.setup
    # The built-in keeps its name: an entry point cannot take "duckdb" over.
    assert registry.get("duckdb").__module__ == "tailrace.engines.duckdb"


def test_a_broken_entry_point_is_a_clear_error_naming_it(toy_distribution):
    registry = EngineRegistry()
    with pytest.raises(
        EngineLoadError,
        match=r"engine 'broken' of entry point group tailrace.engines "
        r"\(tailrace_toy_engine:NOT_AN_ENGINE\) is <object .*>, not a tailrace.engines.abc",
    ):
        registry.get("broken")
    with pytest.raises(EngineLoadError, match=r"engine 'missing' .* ModuleNotFoundError"):
        registry.get("missing")
    assert registry.get("toy").name == "toy"  # one broken plugin does not spoil the others


def test_entry_points_can_be_given_to_the_registry(tmp_path):
    point = importlib.metadata.EntryPoint(
        name="builtin-again", value="tailrace.engines.duckdb:DuckDBEngine", group=ENTRY_POINT_GROUP
    )
    registry = EngineRegistry(setup(tmp_path), entry_points=lambda: [point])
    assert registry.names() == ["builtin-again", "duckdb", "spark"]
    assert registry.get("builtin-again") is registry.get("duckdb")


def test_an_engine_needs_a_setup_to_be_created():
    with pytest.raises(
        ConfigError, match="engine 'duckdb' cannot run here: the engine registry has no setup"
    ):
        EngineRegistry().create("duckdb")


def test_the_hive_engine_setting_is_checked_when_the_registry_is_built(tmp_path):
    settings = load_settings(environ={"TAILRACE_HIVE_ENGINE": "duckbd"}, config_file=None)
    assert settings.hive_engine == "duckbd"
    services = build_services(Settings(home=tmp_path / "home", hive_engine="duckbd"))
    try:
        with pytest.raises(UnknownEngine, match="Did you mean 'duckdb'"):
            _ = services.engines
    finally:
        services.close()
    assert Settings().hive_engine == "duckdb"
