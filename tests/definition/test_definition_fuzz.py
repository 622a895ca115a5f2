"""Property tests: random and mutated definitions and expressions never crash the loader, the
validator or the evaluator; anything that goes wrong is a TailraceError with a message."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_samples import REPO, SAMPLES
from tailrace.definition import (
    from_file_dict,
    from_wire,
    loads,
    object_scope,
    resolve,
    to_file,
    to_wire,
    validate,
)
from tailrace.errors import TailraceError
from tailrace.expressions import render

# The published samples when present; the repository's own seed definition in any case.
SAMPLE_TEXTS = [p.read_text() for p in sorted(SAMPLES.glob("*.json"))] or [
    (REPO / "src" / "tailrace" / "sample" / "log-pipeline.json").read_text()
]
FAST = settings(
    max_examples=int(__import__("os").environ.get("TAILRACE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

NAMES = [
    "Default",
    "S",
    "A",
    "B",
    "In",
    "Out",
    "R",
    "type",
    "schedule",
    "runsOn",
    "input",
    "output",
    "parent",
    "command",
    "period",
    "startDateTime",
    "dependsOn",
    "myX",
    "*myP",
    "scheduleType",
    "workerGroup",
    "name",
]
TYPES = [
    "Schedule",
    "ShellCommandActivity",
    "S3DataNode",
    "Ec2Resource",
    "SnsAlarm",
    "Exists",
    "Bogus",
    "",
    "CSV",
]
EXPR_ATOMS = [
    "#{",
    "}",
    "@scheduledStartTime",
    "input",
    ".",
    "directoryPath",
    "format(",
    ")",
    ",",
    "'YYYY'",
    '"x"',
    "1",
    "+",
    "-",
    "*",
    "/",
    "^",
    "myX",
    "*myP",
    "node",
    "plusDays(",
    "day(",
    "frob(",
    " ",
    "(",
    "'",
    "#{myX}",
    "#{@id}",
    "#{input.directoryPath}",
    "parent",
    "name",
]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
expressions = st.lists(st.sampled_from(EXPR_ATOMS), max_size=12).map("".join)
field_values = st.one_of(
    expressions,
    st.sampled_from(["1 day", "15 Period", "5 minutes", "2012-12-24T00:00:00", "cron", "ONDEMAND", "true"]),
    st.builds(lambda r: {"ref": r}, st.sampled_from(NAMES)),
    st.lists(st.one_of(expressions, st.builds(lambda r: {"ref": r}, st.sampled_from(NAMES))), max_size=3),
)
objects = st.lists(
    st.builds(
        lambda oid, typ, fields: {"id": oid, **({"type": typ} if typ is not None else {}), **fields},
        st.sampled_from(NAMES),
        st.one_of(st.none(), st.sampled_from(TYPES)),
        st.dictionaries(st.sampled_from(NAMES[7:]), field_values, max_size=6),
    ),
    max_size=6,
)
parameters = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["myX", "*myP", "user", "myX"])},
        optional={
            "type": st.sampled_from(["String", "Integer", "Double", "AWS::S3::ObjectKey", "Bogus"]),
            "default": st.one_of(st.text(max_size=5), st.lists(st.text(max_size=3), max_size=2)),
            "allowedValues": st.lists(st.sampled_from(["1", "a", "2"]), max_size=3),
            "isArray": st.sampled_from(["true", "false", "maybe"]),
            "optional": st.sampled_from(["true", "false"]),
        },
    ),
    max_size=3,
)
values = st.dictionaries(
    st.sampled_from(["myX", "*myP", "myP", "other"]),
    st.one_of(st.text(max_size=5), st.lists(st.text(max_size=3), max_size=3)),
    max_size=3,
)


def _exercise(defn: Any, vals: Any = None) -> None:
    """Validate, resolve and render every string field; only TailraceError may come out of render."""
    report = validate(defn, vals)
    for p in report.problems:
        assert p.message and isinstance(p.message, str)
    json.dumps(report.to_aws())
    rdef = resolve(defn, vals)
    for oid, obj in list(rdef.objects.items())[:8]:
        scope = object_scope(rdef, oid, runtime={"@scheduledStartTime": "2012-12-24T00:00:00"})
        for value in list(obj.fields.values())[:8]:
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, str):
                    try:
                        render(item, scope)
                    except TailraceError as exc:
                        assert str(exc)
    back = from_wire(to_wire(defn))
    assert to_file(back)["objects"] == to_file(defn)["objects"]


@FAST
@given(st.text(max_size=200))
def test_random_text_never_crashes_the_loader(text):
    try:
        defn = loads(text)
    except TailraceError as exc:
        assert str(exc)
        return
    _exercise(defn)


@FAST
@given(json_values)
def test_random_json_values_never_crash(data):
    for attempt in (lambda: from_file_dict(data), lambda: loads(json.dumps(data)), lambda: from_wire(data)):
        try:
            defn = attempt()
        except TailraceError as exc:
            assert str(exc)
            continue
        _exercise(defn)


@FAST
@given(objects, parameters, values)
def test_random_definitions_and_expressions_never_crash(objs, params, vals):
    try:
        defn = from_file_dict({"objects": objs, "parameters": params, "values": vals})
    except TailraceError as exc:
        assert str(exc)
        return
    _exercise(defn, vals or None)


@FAST
@given(
    st.sampled_from(range(len(SAMPLE_TEXTS))),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 3), field_values), min_size=1, max_size=5),
    st.integers(0, 10_000),
    st.text(max_size=3),
)
def test_mutated_samples_never_crash(index, edits, cut, junk):
    text = SAMPLE_TEXTS[index]
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("objects"), list) and data["objects"]:
        objs = data["objects"]
        for pos, action, value in edits:
            obj = objs[pos % len(objs)]
            if not isinstance(obj, dict):
                continue
            keys = [k for k in obj if k != "id"] or ["type"]
            key = keys[pos % len(keys)]
            if action == 0:
                obj.pop(key, None)
            elif action == 1:
                obj[key] = value
            elif action == 2:
                obj["type"] = TYPES[pos % len(TYPES)]
            else:
                objs.append(dict(obj))
        try:
            _exercise(from_file_dict(data))
        except TailraceError as exc:
            assert str(exc)
    # And a cut/spliced text of the sample (mostly invalid JSON).
    spliced = text[: cut % (len(text) + 1)] + junk + text[cut % (len(text) + 1) + 1 :]
    try:
        _exercise(loads(spliced))
    except TailraceError as exc:
        assert str(exc)
