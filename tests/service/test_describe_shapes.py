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


def test_a_component_as_written_and_with_evaluate_expressions(harness):
    defn = definition(
        shell("A", command="echo #{myWord} #{workerGroup}"),
        {"id": "P", "myColour": "blue"},
        shell("C", parent={"ref": "P"}),
        default={"failureAndRerunMode": "CASCADE"},
    )
    defn["parameters"] = [{"id": "myWord", "default": "hello"}]
    pid = harness.pipeline(defn)
    plain = {o["id"]: o for o in aws.describe_objects(harness.service, pid, ["A", "C"])["pipelineObjects"]}
    # As written: the object's own fields and its parent, no inherited ones.
    assert _value(plain["A"], "command") == ["echo #{myWord} #{workerGroup}"]
    assert "failureAndRerunMode" not in _keys(plain["A"]) and "workerGroup" not in _keys(plain["A"])
    assert _value(plain["C"], "parent") == ["P"] and "myColour" not in _keys(plain["C"])
    assert _value(plain["A"], "@sphere") == ["COMPONENT"]
    ev = {
        o["id"]: o
        for o in aws.describe_objects(harness.service, pid, ["A", "C"], evaluate_expressions=True)[
            "pipelineObjects"
        ]
    }
    # Evaluated: inherited fields added, `parent` dropped, expressions evaluated.
    assert _value(ev["A"], "command") == ["echo hello wg"]
    assert _value(ev["A"], "failureAndRerunMode") == ["CASCADE"] and _value(ev["A"], "workerGroup") == ["wg"]
    assert _value(ev["A"], "schedule") == ["Every"]
    assert _value(ev["C"], "myColour") == ["blue"] and "parent" not in _keys(ev["C"])
    assert _value(ev["A"], "@status") == _value(plain["A"], "@status")
    for o in (*plain.values(), *ev.values()):
        assert all(n == 1 for n in _keys(o).values()), _keys(o)
