"""The API wire form (`pipelineObjects`, `parameterObjects`, `parameterValues`) and the file form.

Conversions follow the AWS CLI's `translator.py`: an object's name defaults to its id; fields go
out in sorted key order, one `{key, stringValue|refValue}` per value, so a multi-valued field is
a repeated key; coming back, repeated keys become a list again and `name` is always written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tailrace.definition.model import (
    FieldValue,
    ParameterDef,
    PipelineDefinition,
    PipelineObject,
    Ref,
    values_of,
)
from tailrace.definition.problems import FILE_LEVEL_ID, DefinitionError, Problem, ValidationReport, error

WIRE_KEYS = ("pipelineObjects", "parameterObjects", "parameterValues")


# -- definition -> wire / file ----------------------------------------------------------------


def to_wire(defn: PipelineDefinition) -> dict[str, Any]:
    """PutPipelineDefinition's request body (without pipelineId)."""
    objects = []
    for obj in defn.objects:
        fields: list[dict[str, str]] = []
        for key in sorted(obj.fields):
            for item in values_of(obj.fields[key]):
                if isinstance(item, Ref):
                    fields.append({"key": key, "refValue": item.id})
                else:
                    fields.append({"key": key, "stringValue": item})
        objects.append({"id": obj.id, "name": obj.display_name, "fields": fields})
    out: dict[str, Any] = {"pipelineObjects": objects}
    if defn.parameters:
        out["parameterObjects"] = [
            {
                "id": p.id,
                "attributes": [
                    {"key": key, "stringValue": item}
                    for key in sorted(p.attributes)
                    for item in _strings(p.attributes[key])
                ],
            }
            for p in defn.parameters
        ]
    if defn.values:
        out["parameterValues"] = [
            {"id": key, "stringValue": item} for key, value in defn.values.items() for item in _strings(value)
        ]
    return out


def to_file(defn: PipelineDefinition) -> dict[str, Any]:
    """The file form, as `aws datapipeline get-pipeline-definition` prints it."""
    objects = []
    for obj in defn.objects:
        entry: dict[str, Any] = {"id": obj.id, "name": obj.display_name}
        for key, value in obj.fields.items():
            entry[key] = _file_value(value)
        objects.append(entry)
    out: dict[str, Any] = {"objects": objects}
    if defn.parameters:
        out["parameters"] = [
            {"id": p.id, **{k: list(v) if isinstance(v, tuple) else v for k, v in p.attributes.items()}}
            for p in defn.parameters
        ]
    if defn.values:
        out["values"] = {k: list(v) if isinstance(v, tuple) else v for k, v in defn.values.items()}
    if defn.metadata is not None:
        out["metadata"] = dict(defn.metadata)
    return out


def _file_value(value: FieldValue) -> Any:
    if isinstance(value, tuple):
        return [_file_value(v) for v in value]
    if isinstance(value, Ref):
        return {"ref": value.id}
    return value


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


# -- wire -> definition -----------------------------------------------------------------------


def collapse(values: list[Any]) -> Any:
    """Repeated keys become a tuple; a single value stays a scalar."""
    return values[0] if len(values) == 1 else tuple(values)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def err(self, object_id: str | None, field: str | None, message: str) -> None:
        self.problems.append(error(object_id, field, message))


def from_wire(wire: Mapping[str, Any], *, source: str = "<wire>") -> PipelineDefinition:
    """A definition from the API's shapes; every malformed part is listed in one DefinitionError."""
    c = _Collector()
    if not isinstance(wire, Mapping):
        raise DefinitionError(f"expected an object with pipelineObjects; found {type(wire).__name__}")
    raw_objects = wire.get("pipelineObjects", [])
    objects: list[PipelineObject] = []
    if not isinstance(raw_objects, list):
        c.err(None, "pipelineObjects", f"expected a list of objects; found {type(raw_objects).__name__}")
        raw_objects = []
    for index, raw in enumerate(raw_objects):
        obj = _wire_object(raw, index, c)
        if obj is not None:
            objects.append(obj)
    parameters = _wire_parameters(wire.get("parameterObjects", []), c)
    values = _wire_values(wire.get("parameterValues", []), c)
    if c.problems:
        raise DefinitionError(ValidationReport(problems=tuple(c.problems), source=source))
    return PipelineDefinition(
        objects=tuple(objects), parameters=parameters, values=values, source=source, form="wire"
    )


def _wire_object(raw: Any, index: int, c: _Collector) -> PipelineObject | None:
    where = f"pipelineObjects[{index}]"
    if not isinstance(raw, Mapping):
        c.err(None, None, f"{where}: expected an object {{id, name, fields}}; found {type(raw).__name__}")
        return None
    oid = raw.get("id")
    if not isinstance(oid, str) or not oid:
        c.err(None, "id", f"{where}: every object needs a non-empty string 'id'; found {oid!r}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        c.err(oid, "name", f"every object needs a non-empty string 'name' on the wire; found {name!r}")
        return None
    raw_fields = raw.get("fields", [])
    if not isinstance(raw_fields, list):
        c.err(
            oid,
            "fields",
            f"expected a list of {{key, stringValue|refValue}}; found {type(raw_fields).__name__}",
        )
        return None
    grouped: dict[str, list[str | Ref]] = {}
    for f in raw_fields:
        item = _wire_field(oid, f, c)
        if item is not None:
            grouped.setdefault(item[0], []).append(item[1])
    fields = {key: collapse(vals) for key, vals in grouped.items()}
    return PipelineObject(id=oid, name=name, fields=fields)


def _wire_field(oid: str, f: Any, c: _Collector) -> tuple[str, str | Ref] | None:
    if not isinstance(f, Mapping):
        c.err(oid, None, f"expected a field {{key, stringValue|refValue}}; found {type(f).__name__}")
        return None
    key = f.get("key")
    if not isinstance(key, str) or not key:
        c.err(oid, None, f"a field needs a non-empty string 'key'; found {key!r}")
        return None
    has_string, has_ref = "stringValue" in f, "refValue" in f
    if has_string == has_ref:
        c.err(
            oid,
            key,
            "a field needs exactly one of 'stringValue' and 'refValue'; found "
            + ("both" if has_string else "neither"),
        )
        return None
    value = f["refValue"] if has_ref else f["stringValue"]
    if not isinstance(value, str):
        kind = "refValue" if has_ref else "stringValue"
        c.err(oid, key, f"'{kind}' must be a string; found {type(value).__name__} {value!r}")
        return None
    if has_ref:
        if not value:
            c.err(oid, key, "'refValue' must name an object; found an empty string")
            return None
        return key, Ref(value)
    return key, value


def _wire_parameters(raw: Any, c: _Collector) -> tuple[ParameterDef, ...]:
    if not isinstance(raw, list):
        c.err(None, "parameterObjects", f"expected a list; found {type(raw).__name__}")
        return ()
    out: list[ParameterDef] = []
    for index, p in enumerate(raw):
        if not isinstance(p, Mapping) or not isinstance(p.get("id"), str) or not p.get("id"):
            c.err(
                None,
                "parameterObjects",
                f"parameterObjects[{index}]: expected {{id, attributes}} with a "
                f"non-empty string id; found {p!r}"[:300],
            )
            continue
        pid = p["id"]
        attrs = p.get("attributes", [])
        if not isinstance(attrs, list):
            c.err(pid, "attributes", f"expected a list of {{key, stringValue}}; found {type(attrs).__name__}")
            continue
        grouped: dict[str, list[str]] = {}
        for a in attrs:
            if not isinstance(a, Mapping) or not isinstance(a.get("key"), str) or not a.get("key"):
                c.err(pid, "attributes", f"an attribute needs a non-empty string 'key'; found {a!r}"[:300])
                continue
            value = a.get("stringValue")
            if not isinstance(value, str):
                c.err(pid, a["key"], f"'stringValue' must be a string; found {value!r}"[:300])
                continue
            grouped.setdefault(a["key"], []).append(value)
        out.append(ParameterDef(id=pid, attributes={k: collapse(v) for k, v in grouped.items()}))
    return tuple(out)


def _wire_values(raw: Any, c: _Collector) -> dict[str, str | tuple[str, ...]]:
    if not isinstance(raw, list):
        c.err(None, "parameterValues", f"expected a list of {{id, stringValue}}; found {type(raw).__name__}")
        return {}
    grouped: dict[str, list[str]] = {}
    for v in raw:
        if not isinstance(v, Mapping) or not isinstance(v.get("id"), str) or not v.get("id"):
            c.err(
                FILE_LEVEL_ID, "parameterValues", f"a value needs a non-empty string 'id'; found {v!r}"[:300]
            )
            continue
        value = v.get("stringValue")
        if not isinstance(value, str):
            c.err(v["id"], "stringValue", f"'stringValue' must be a string; found {value!r}"[:300])
            continue
        grouped.setdefault(v["id"], []).append(value)
    return {k: collapse(vals) for k, vals in grouped.items()}
