"""A component's pipelineLogUri is evaluated once per active definition, not at every claim:
claims evaluate it inside the metadata transaction, where an owner's expensive expression
would hold every owner's claims."""

from __future__ import annotations

from datetime import UTC, datetime

import tailrace.expressions as expressions
from tailrace.runtime.activation import build_active

WIRE = {
    "pipelineObjects": [
        {"id": "Default", "name": "Default", "fields": [
            {"key": "scheduleType", "stringValue": "ondemand"},
            {"key": "failureAndRerunMode", "stringValue": "CASCADE"},
        ]},
        {"id": "Say", "name": "Say", "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"},
            {"key": "command", "stringValue": "echo hi"},
            {"key": "myBase", "stringValue": "s3://logs-bucket/base"},
            {"key": "pipelineLogUri", "stringValue": "#{myBase}/#{@pipelineId}"},
        ]},
    ]
}  # fmt: skip


def test_the_log_root_is_rendered_once_per_component(monkeypatch) -> None:
    when = datetime(2026, 3, 1, tzinfo=UTC)
    active = build_active(pipeline_id="df-1", version=1, wire=WIRE, first_activated_at=when,
                          activation_time=when, start_override=None)  # fmt: skip
    calls: list[str] = []
    real = expressions.render

    def counting(template, scope):  # type: ignore[no-untyped-def]
        calls.append(str(template))
        return real(template, scope)

    monkeypatch.setattr(expressions, "render", counting)
    assert active.log_root("Say") == "s3://logs-bucket/base/df-1"
    assert active.log_root("Say") == "s3://logs-bucket/base/df-1"
    assert active.log_root("Default") is None
    assert len(calls) == 1
