"""Load a definition file: the file form, the wire form, or a file of only parameters or values.

The file form is what `aws datapipeline put-pipeline-definition --pipeline-definition` reads:
`objects` (each with `id`, optional `name`, and fields whose values are strings, `{"ref": id}`
or arrays of those), optional `parameters`, `values` and `metadata`. Some published files mix
in the wire form (objects with `fields: [{key, stringValue|refValue}]`, parameters with
`attributes`, `parameterValues`); those load too. What the CLI would have rejected or silently
changed (a number where a string belongs, an empty array) loads with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from tailrace.definition.jsonload import JArray, JNumber, JObject, JsonDocument, parse_json, plain
from tailrace.definition.model import FieldValue, ParameterDef, PipelineDefinition, PipelineObject, Ref
from tailrace.definition.problems import (
    FILE_LEVEL_ID,
    DefinitionError,
    Problem,
    ValidationReport,
    error,
    warning,
)
from tailrace.definition.wire import WIRE_KEYS, collapse, from_wire
from tailrace.errors import Location

FILE_KEYS = ("objects", "parameters", "values", "metadata")


def load_file(path: str | Path) -> PipelineDefinition:
    """Read and load a definition (any form) from a file; DefinitionError names line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"cannot read the definition file: {exc}", Location(source=str(p)))
    return loads(text, source=str(p))


def loads(text: str, *, source: str = "<string>") -> PipelineDefinition:
    return from_document(parse_json(text, source=source))


def from_file_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> PipelineDefinition:
    """Load already-parsed JSON (e.g. `json.loads` output) in any of the accepted forms."""
    return _Loader(None, source).load(data)


def from_document(doc: JsonDocument) -> PipelineDefinition:
    return _Loader(doc, doc.source or "<string>").load(doc.value)


class _Pos(TypedDict, total=False):
    """Keyword arguments for Location: where a JSON node starts."""

    line: int
    column: int


class _Loader:
    def __init__(self, doc: JsonDocument | None, source: str) -> None:
        self.doc = doc
        self.source = source
        self.problems: list[Problem] = []
        self.owners: list[tuple[int, int, str]] = []  # (start, end, id) of objects, for JSON warnings

    # -- positions and problems ---------------------------------------------------------------

    def pos(self, node: Any, key: str | None = None) -> _Pos:
        if self.doc is None or not isinstance(node, JObject | JArray):
            return {}
        offset = node.key_offsets.get(key, node.start) if key and isinstance(node, JObject) else node.start
        line, column = self.doc.position(offset)
        return {"line": line, "column": column}

    def line_of(self, node: Any, key: str | None = None) -> int | None:
        return self.pos(node, key).get("line")

    def err(
        self, oid: str | None, field: str | None, message: str, node: Any = None, key: str | None = None
    ) -> None:
        self.problems.append(error(oid, field, message, **self.pos(node, key)))

    def warn(
        self, oid: str | None, field: str | None, message: str, node: Any = None, key: str | None = None
    ) -> None:
        self.problems.append(warning(oid, field, message, **self.pos(node, key)))

    def owner(self, node: Any, oid: str) -> None:
        if isinstance(node, JObject):
            self.owners.append((node.start, node.end, oid))

    def json_warnings(self) -> list[Problem]:
        if self.doc is None:
            return []
        out = []
        for w in self.doc.warnings:
            inside = [(end - start, oid) for start, end, oid in self.owners if start <= w.offset < end]
            oid = min(inside)[1] if inside else FILE_LEVEL_ID
            line, column = self.doc.position(w.offset)
            out.append(warning(oid, None, w.message, line=line, column=column))
        return out

    # -- forms ----------------------------------------------------------------------------------

    def load(self, data: Any) -> PipelineDefinition:
        if not isinstance(data, Mapping):
            raise DefinitionError(
                "expected a JSON object with 'objects' (a pipeline definition), 'parameters' or 'values'; "
                f"found {_kind(data)}",
                Location(source=self.source, **self.pos(data)),
            )
        if any(k in data for k in WIRE_KEYS) and "objects" not in data:
            defn = self.wire({k: data[k] for k in WIRE_KEYS if k in data}, data)
        elif _is_wire_variant(data):
            defn = self.wire(
                {
                    "pipelineObjects": data.get("objects", []),
                    "parameterObjects": data.get("parameters", []),
                    "parameterValues": data.get("parameterValues", []),
                },
                data,
            )
        elif not any(k in data for k in (*FILE_KEYS, *WIRE_KEYS)) and data:
            if not all(_is_value(v) for v in data.values()):
                raise DefinitionError(
                    "expected a JSON object with 'objects' (a pipeline definition), 'parameters' or 'values'; "
                    f"found the keys {', '.join(repr(k) for k in list(data)[:5])}",
                    Location(source=self.source, **self.pos(data)),
                )
            defn = self.bare_values(data)
        else:
            defn = self.file_form(data)
        problems = self.json_warnings() + self.problems
        errors = [p for p in problems if p.is_error]
        if errors:
            raise DefinitionError(ValidationReport(problems=tuple(problems), source=self.source))
        return PipelineDefinition(
            objects=defn.objects,
            parameters=defn.parameters,
            values=defn.values,
            metadata=defn.metadata,
            source=self.source,
            warnings=tuple(problems),
            form=defn.form,
        )

    def wire(self, wire: dict[str, Any], data: Mapping[str, Any]) -> PipelineDefinition:
        for key in data:
            if key not in (*WIRE_KEYS, *FILE_KEYS):
                self.warn(FILE_LEVEL_ID, key, f"unknown top-level key '{key}' is ignored", data, key)
        for raw in wire.get("pipelineObjects") or []:
            if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
                self.owner(raw, raw["id"])
        try:
            defn = from_wire(plain(wire), source=self.source)
        except DefinitionError as exc:
            self.problems.extend(exc.report.problems)
            return PipelineDefinition()
        metadata = data.get("metadata")
        return PipelineDefinition(
            objects=defn.objects,
            parameters=defn.parameters,
            values=defn.values,
            metadata=dict(plain(metadata)) if isinstance(metadata, Mapping) else None,
            form="wire",
        )

    def bare_values(self, data: Mapping[str, Any]) -> PipelineDefinition:
        """A values file may be a bare mapping of parameter id to value(s)."""
        return PipelineDefinition(values=self.values(data, data))

    def file_form(self, data: Mapping[str, Any]) -> PipelineDefinition:
        for key in data:
            if key not in FILE_KEYS:
                hint = (
                    " (it belongs to the wire form; use 'values' in the file form)"
                    if key in WIRE_KEYS
                    else ""
                )
                self.warn(FILE_LEVEL_ID, key, f"unknown top-level key '{key}' is ignored{hint}", data, key)
        objects: list[PipelineObject] = []
        raw_objects = data.get("objects", [])
        if not isinstance(raw_objects, list):
            self.err(
                FILE_LEVEL_ID,
                "objects",
                f"expected an array of objects; found {_kind(raw_objects)}",
                data,
                "objects",
            )
            raw_objects = []
        for index, raw in enumerate(raw_objects):
            obj = self.object(raw, index)
            if obj is not None:
                objects.append(obj)
        parameters = self.parameters(data.get("parameters", []), data)
        values: dict[str, str | tuple[str, ...]] = {}
        if "values" in data:
            raw_values = data["values"]
            if isinstance(raw_values, Mapping):
                values = self.values(raw_values, raw_values)
            else:
                self.err(
                    FILE_LEVEL_ID,
                    "values",
                    f"expected an object of id: value; found {_kind(raw_values)}",
                    data,
                    "values",
                )
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            self.warn(
                FILE_LEVEL_ID,
                "metadata",
                f"expected an object; found {_kind(metadata)} (ignored)",
                data,
                "metadata",
            )
            metadata = None
        return PipelineDefinition(
            objects=tuple(objects),
            parameters=parameters,
            values=values,
            metadata=dict(plain(metadata)) if metadata is not None else None,
        )

    # -- pieces ---------------------------------------------------------------------------------

    def object(self, raw: Any, index: int) -> PipelineObject | None:
        if not isinstance(raw, Mapping):
            self.err(FILE_LEVEL_ID, None, f"objects[{index}]: expected an object; found {_kind(raw)}", raw)
            return None
        oid = raw.get("id")
        if not isinstance(oid, str) or not oid:
            self.err(
                FILE_LEVEL_ID,
                "id",
                f"objects[{index}]: every object needs a non-empty string 'id'; found {_show(oid)}",
                raw,
                "id" if "id" in raw else None,
            )
            return None
        self.owner(raw, oid)
        name = raw.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            self.err(oid, "name", f"expected a non-empty string; found {_show(name)}", raw, "name")
            name = None
        fields: dict[str, FieldValue] = {}
        lines: dict[str, int] = {}
        for key, value in raw.items():
            if key in ("id", "name"):
                continue
            converted = self.field_value(oid, key, value, raw)
            if converted is not None:
                fields[key] = converted
            line = self.line_of(raw, key)
            if line is not None:
                lines[key] = line
        return PipelineObject(id=oid, name=name, fields=fields, line=self.line_of(raw), field_lines=lines)

    def field_value(self, oid: str, key: str, value: Any, node: Any) -> FieldValue | None:
        if isinstance(value, list):
            items = [self.scalar(oid, key, v, node) for v in value]
            if any(i is None for i in items):
                return None
            if not items:
                self.warn(
                    oid, key, "empty array: the field is left out (the wire form cannot carry it)", node, key
                )
                return None
            return collapse(items)
        return self.scalar(oid, key, value, node)

    def scalar(self, oid: str, key: str, value: Any, node: Any) -> str | Ref | None:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            ref = value.get("ref")
            if set(value) == {"ref"} and isinstance(ref, str) and ref:
                return Ref(ref)
            self.err(
                oid,
                key,
                'expected a string, a reference {"ref": "<object id>"} or an array of those; '
                f"found {_show(value)}",
                node,
                key,
            )
            return None
        if isinstance(value, JNumber | bool | int | float) and value is not None:
            text = _scalar_text(value)
            self.warn(
                oid,
                key,
                f'expected a string; found {_kind(value)} {text} (read as "{text}"; the AWS CLI '
                "would refuse it)",
                node,
                key,
            )
            return text
        self.err(
            oid, key, f"expected a string, a reference or an array of those; found {_kind(value)}", node, key
        )
        return None

    def parameters(self, raw: Any, data: Any) -> tuple[ParameterDef, ...]:
        if not isinstance(raw, list):
            self.err(
                FILE_LEVEL_ID,
                "parameters",
                f"expected an array of parameter objects; found {_kind(raw)}",
                data,
                "parameters",
            )
            return ()
        out = []
        for index, p in enumerate(raw):
            if not isinstance(p, Mapping) or not isinstance(p.get("id"), str) or not p.get("id"):
                found = _show(p.get("id")) if isinstance(p, Mapping) else _kind(p)
                self.err(
                    FILE_LEVEL_ID,
                    "parameters",
                    f"parameters[{index}]: every parameter needs a non-empty string 'id'; found {found}",
                    p,
                )
                continue
            pid = p["id"]
            self.owner(p, pid)
            attrs: dict[str, str | tuple[str, ...]] = {}
            lines: dict[str, int] = {}
            for key, value in p.items():
                line = self.line_of(p, key)
                if line is not None:
                    lines[key] = line
                if key == "id":
                    continue
                converted = self.attribute(pid, key, value, p)
                if converted is not None:
                    attrs[key] = converted
            out.append(ParameterDef(id=pid, attributes=attrs, line=self.line_of(p), attribute_lines=lines))
        return tuple(out)

    def attribute(self, pid: str, key: str, value: Any, node: Any) -> str | tuple[str, ...] | None:
        items = value if isinstance(value, list) else [value]
        texts: list[str] = []
        for item in items:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, JNumber | bool | int | float):
                text = _scalar_text(item)
                self.warn(
                    pid, key, f'expected a string; found {_kind(item)} {text} (read as "{text}")', node, key
                )
                texts.append(text)
            else:
                self.err(
                    pid, key, f"expected a string or an array of strings; found {_kind(item)}", node, key
                )
                return None
        if not texts:
            self.warn(pid, key, "empty array: the attribute is left out", node, key)
            return None
        return collapse(texts)

    def values(self, raw: Mapping[str, Any], node: Any) -> dict[str, str | tuple[str, ...]]:
        out: dict[str, str | tuple[str, ...]] = {}
        for key, value in raw.items():
            if not key:
                self.err(
                    FILE_LEVEL_ID, "values", "a parameter value needs a non-empty parameter id", node, key
                )
                continue
            converted = self.attribute(key, key, value, node)
            if converted is not None:
                out[key] = converted
        return out


def _is_wire_variant(data: Mapping[str, Any]) -> bool:
    """`objects` written in the wire shape ({id, name, fields: [...]}), as two AWS samples do."""
    objects = data.get("objects")
    if not isinstance(objects, list) or not objects:
        return "parameterValues" in data and "objects" not in data
    return all(
        isinstance(o, Mapping) and isinstance(o.get("fields"), list) and set(o) <= {"id", "name", "fields"}
        for o in objects
    )


def _is_value(value: Any) -> bool:
    scalar = (str, JNumber, bool, int, float)
    return isinstance(value, scalar) or (
        isinstance(value, list) and all(isinstance(v, scalar) for v in value)
    )


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, JNumber):
        return value.text
    return str(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, JNumber | int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    text = repr(plain(value))
    return f"{_kind(value)} {text[:120]}"
