"""DescribeObjects' shapes as the API Reference shows them: each single-valued key once on an
instance, and a component with evaluateExpressions shows its inherited fields, evaluated."""

from __future__ import annotations

from collections import Counter

from service_harness import definition, shell

from tailrace.api.aws import describe as aws


def _keys(obj):
    return Counter(f["key"] for f in obj["fields"])


def _value(obj, key):
    return [f.get("stringValue", f.get("refValue")) for f in obj["fields"] if f["key"] == key]


def test_instances_name_type_and_worker_group_once(harness):
    defn = definition(
        shell("A", workerGroup="wg", command="echo #{@scheduledStartTime}"),
        default={"failureAndRerunMode": "CASCADE"},
    )
    pid = harness.pipeline(defn)
    harness.tick()
    inst = next(i for i in harness.statuses(pid) if i.startswith("@A_"))
    for evaluate in (False, True):
        (obj,) = aws.describe_objects(harness.service, pid, [inst], evaluate_expressions=evaluate)[
            "pipelineObjects"
        ]
        keys = _keys(obj)
        assert keys["type"] == 1 and keys["workerGroup"] == 1, (evaluate, keys)
        assert _value(obj, "type") == ["ShellCommandActivity"] and _value(obj, "workerGroup") == ["wg"]
        assert all(n == 1 for k, n in keys.items()), keys


def test_a_component_with_evaluate_expressions_shows_inherited_fields_evaluated(harness):
    defn = definition(
        shell("A", command="echo #{myWord} #{workerGroup}"),
        default={"failureAndRerunMode": "CASCADE"},
    )
    defn["parameters"] = [{"id": "myWord", "default": "hello"}]
    pid = harness.pipeline(defn)
    (plain,) = aws.describe_objects(harness.service, pid, ["A"])["pipelineObjects"]
    assert _value(plain, "command") == ["echo #{myWord} #{workerGroup}"]
    (ev,) = aws.describe_objects(harness.service, pid, ["A"], evaluate_expressions=True)["pipelineObjects"]
    assert _value(ev, "command") == ["echo hello wg"]
    assert _value(ev, "failureAndRerunMode") == ["CASCADE"] and _value(ev, "workerGroup") == ["wg"]
    assert _value(ev, "schedule") == ["Every"]
    assert _value(ev, "@sphere") == ["COMPONENT"] and _value(ev, "@status") == _value(plain, "@status")
    assert all(n == 1 for n in _keys(ev).values()), _keys(ev)
