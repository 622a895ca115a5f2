"""The one registry of activity and precondition kinds, the attempt boundary that reads it, and
the engine a HiveActivity runs on being chosen by name from the context's engine registry."""

from __future__ import annotations

import json
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from tailrace.definition import loads, resolve
from tailrace.engines.abc import Capabilities, EngineSetup, ScriptEngine, ScriptRequest, ScriptResult
from tailrace.engines.metastore import MemoryMetastore
from tailrace.engines.registry import EngineRegistry
from tailrace.plan import Planner, ScopeBuilder
from tailrace.runtime.activities import execute_attempt
from tailrace.runtime.activities.registry import (
    BUILTIN_MODULES,
    ActivityRegistry,
    Role,
    UnknownKind,
    builtin_registry,
    load,
)
from tailrace.runtime.context import AttemptContext, AttemptOutcome, ListLog
from tailrace.storage import Storage

START = datetime(2012, 12, 24, tzinfo=UTC)


def context(tmp_path: Path, activity: dict, **kw: object) -> AttemptContext:
    """An attempt of `activity`'s first instance, as the worker builds it."""
    objects = [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "local"},
        {"id": "S", "type": "Schedule", "startDateTime": "2012-12-24T00:00:00", "period": "1 day"},
        activity,
    ]
    resolved = resolve(loads(json.dumps({"objects": objects})))
    planner = Planner(resolved, activated_at=START, default_retries=0)
    inst = next(i for i in planner.plan_until(START + timedelta(days=1)) if i.component_id == activity["id"])
    home = tmp_path / "home"
    return AttemptContext(
        pipeline_id="df-TEST",
        resolved=resolved,
        parameters={},
        instance=inst,
        attempt=1,
        storage=Storage(home=home),
        scopes=ScopeBuilder(resolved, planner, pipeline_id="df-TEST", parameters={}),
        work_dir=tmp_path / "work",
        log=ListLog(),
        **kw,  # type: ignore[arg-type]
    )


SHELL = {"id": "Say", "type": "ShellCommandActivity", "command": "echo hello"}


def test_the_built_in_kinds_by_role():
    registry = builtin_registry()
    assert registry.kinds(Role.ACTIVITY) == [
        "CopyActivity",
        "EmrActivity",
        "HiveActivity",
        "HiveCopyActivity",
        "RedshiftCopyActivity",
        "ShellCommandActivity",
        "SqlActivity",
    ]
    assert registry.kinds(Role.PRECONDITION) == [
        "DynamoDBDataExists",
        "DynamoDBTableExists",
        "Exists",
        "S3KeyExists",
        "S3PrefixNotEmpty",
        "ShellCommandPrecondition",
    ]
    assert builtin_registry() is registry  # loaded once


def test_an_unknown_kind_is_refused_with_the_closest_and_every_kind():
    registry = builtin_registry()
    with pytest.raises(UnknownKind) as caught:
        registry.lookup("HiveActivty")
    msg = str(caught.value)
    assert "activity type 'HiveActivty' cannot run on this installation." in msg
    assert "Did you mean 'HiveActivity'?" in msg
    assert (
        "CopyActivity, EmrActivity, HiveActivity, HiveCopyActivity, RedshiftCopyActivity, ShellCommandActivity, "
        "SqlActivity" in msg
    )
    # A precondition is not an activity (and the other way round): each role has its own list.
    with pytest.raises(
        UnknownKind,
        match="Precondition types that run here: DynamoDBDataExists, DynamoDBTableExists, Exists, S3KeyExists",
    ):
        registry.lookup("ShellCommandActivity", Role.PRECONDITION)
    with pytest.raises(UnknownKind):
        registry.lookup("S3KeyExists", Role.ACTIVITY)


def test_a_kind_cannot_be_registered_twice():
    registry = ActivityRegistry()
    registry.register("X", lambda ctx: AttemptOutcome(status="FINISHED"))
    with pytest.raises(Exception, match="activity type 'X' is registered twice"):
        registry.register("X", lambda ctx: AttemptOutcome(status="FAILED"), role=Role.PRECONDITION)


def test_registration_is_explicit_per_module(monkeypatch):
    """Importing a kind's module registers nothing; the registry calls its register()."""
    module = types.ModuleType("tailrace_test_kinds")

    def register(registry: ActivityRegistry) -> None:
        registry.register("EchoActivity", lambda ctx: AttemptOutcome(status="FINISHED", summary={"n": 1}))

    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tailrace_test_kinds", module)
    registry = load(("tailrace_test_kinds",))
    assert registry.kinds() == ["EchoActivity"]
    assert "EchoActivity" not in builtin_registry().kinds()
    assert "tailrace.runtime.activities.hive" in BUILTIN_MODULES


def test_the_attempt_boundary_uses_the_registry_it_is_given(tmp_path):
    ctx = context(tmp_path, SHELL)
    ran = execute_attempt(ctx)
    assert ran.status == "FINISHED" and "hello" in ctx.log.text()  # type: ignore[attr-defined]

    only_sql = load(("tailrace.runtime.activities.sql",))
    refused = execute_attempt(context(tmp_path, SHELL), only_sql)
    assert (refused.status, refused.error_id) == ("FAILED", "UnsupportedType")
    assert refused.error_message == (
        "object 'Say': activity type 'ShellCommandActivity' cannot run on this installation. "
        "Did you mean 'SqlActivity'? Activity types that run here: SqlActivity (see docs/definitions.md)"
    )


class Recording(ScriptEngine):
    """A test engine that records what the HiveActivity asks of it."""

    name = "recording"
    capabilities = Capabilities(distributed=True, spills_to_disk=False, supports_udtf=False)
    seen: ClassVar[list[ScriptRequest]] = []

    def run(self, request: ScriptRequest) -> ScriptResult:
        Recording.seen.append(request)
        return ScriptResult(source=request.source)

    def interrupt(self) -> None:
        pass


HIVE = {
    "id": "Agg",
    "type": "HiveActivity",
    "hiveScript": "SELECT '${DAY}'",
    "scriptVariable": "DAY=#{format(@scheduledStartTime,'YYYYMMdd')}",
    "stage": "false",
}


def test_the_hive_engine_is_chosen_by_name_from_the_context(tmp_path):
    metastore = MemoryMetastore()
    engines = EngineRegistry(
        EngineSetup(storage=Storage(home=tmp_path / "home"), metastore_for=lambda _o: metastore)
    )
    engines.register(Recording)
    Recording.seen.clear()
    ctx = context(tmp_path, HIVE, engines=engines, hive_engine="recording", owner="alice")
    outcome = execute_attempt(ctx)
    assert outcome.status == "FINISHED", outcome.error_message
    (request,) = Recording.seen
    assert request.text == "SELECT '${DAY}'" and request.source == "Agg.hiveScript"
    assert dict(request.variables) == {"DAY": "20121224"}
    assert request.owner == "alice"
    assert request.cancelled is ctx.cancelled
    assert request.work_dir.is_relative_to(ctx.work_dir)

    wrong = execute_attempt(context(tmp_path, HIVE, engines=engines, hive_engine="recordnig"))
    assert wrong.status == "FAILED" and wrong.error_id == "UnknownEngine"
    assert wrong.error_message == (
        "unknown engine 'recordnig'. Did you mean 'recording'? Engines: duckdb, recording, spark"
    )


def test_without_an_engine_registry_a_hive_activity_fails_clearly(tmp_path):
    outcome = execute_attempt(context(tmp_path, HIVE))
    assert outcome.status == "FAILED"
    assert outcome.error_message == "object 'Agg', field 'type': no Hive engine is configured"
