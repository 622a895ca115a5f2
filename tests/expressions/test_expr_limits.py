"""Bounds on what one field's evaluation may cost when nobody set a time limit (fields rendered
while pipelines run, in a worker or the scheduler): time, the number of values, the text's length."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tailrace.definition import from_file_dict, object_scope, resolve
from tailrace.expressions import ExpressionError, render
from tailrace.expressions import evaluator as ev
from tailrace.expressions.values import MappingScope


def scope_of(fields: dict[str, Any]) -> Any:
    objects = [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "A", "type": "ShellCommandActivity", **fields},
    ]
    return object_scope(resolve(from_file_dict({"objects": objects})), "A")


def test_a_field_fan_out_is_stopped_without_a_callers_time_limit(monkeypatch):
    """Fields that each refer twice to the next (2^40 pieces): stopped, not run for ever."""
    monkeypatch.setattr(ev, "RUNTIME_SECONDS", 0.5)
    fields = {f"myF{n}": f"#{{myF{n + 1}}}#{{myF{n + 1}}}" for n in range(40)}
    fields["myF40"] = "ab"
    started = time.process_time()
    with pytest.raises(ExpressionError, match="time limit"):
        render("#{myF0}", scope_of(fields))
    assert time.process_time() - started < 30  # CPU time: a bound, not a measurement


def test_a_list_referred_to_many_times_is_refused_before_it_is_built():
    scope = MappingScope({"myL": [str(i) for i in range(30)]})
    with pytest.raises(ExpressionError, match=r"yields 656100000000 values; at most 10000"):
        render("#{myL}" * 8, scope)
    with pytest.raises(ExpressionError, match="at most 10000"):
        render("#{myL + myL + myL}", scope)
    assert len(render("#{myL}-#{myL}", scope)) == 900  # what fits is rendered as before


def test_a_field_doubling_a_long_text_is_refused():
    fields = {f"myF{n}": f"#{{myF{n + 1}}}#{{myF{n + 1}}}" for n in range(30)}
    fields["myF30"] = "x" * 100_000
    with pytest.raises(ExpressionError, match="characters long; at most 16777216"):
        render("#{myF0}", scope_of(fields))


def test_a_callers_own_time_limit_is_kept(monkeypatch):
    monkeypatch.setattr(ev, "RUNTIME_SECONDS", 1000.0)
    fields = {f"myF{n}": f"#{{myF{n + 1}}}#{{myF{n + 1}}}" for n in range(40)}
    fields["myF40"] = "ab"
    with ev.time_limit(0.2), pytest.raises(ExpressionError, match="time limit"):
        render("#{myF0}", scope_of(fields))
