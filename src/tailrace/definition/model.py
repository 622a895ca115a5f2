"""Frozen records of a pipeline definition, as loaded (before inheritance is applied).

A field value is a string, a reference, or a tuple of those (a multi-valued field written as
a JSON array). The object's `type` is an ordinary field, as on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailrace.definition.problems import Problem

Scalar = "str | Ref"


@dataclass(frozen=True, slots=True)
class Ref:
    """`{"ref": "id"}` in the file form, `refValue` on the wire."""

    id: str


FieldValue = str | Ref | tuple[str | Ref, ...]


def values_of(value: FieldValue | None) -> tuple[str | Ref, ...]:
    """Every value of a field as a tuple (single values become a 1-tuple, None an empty one)."""
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value
    return (value,)


def _frozen(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, kw_only=True)
class PipelineObject:
    id: str
    name: str | None = None
    """None when the file form left it out (the CLI then uses the id)."""
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)
    """1-based line of the object in its source file, when known (for error messages)."""
    field_lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    """1-based line of each field's key in the source file, when known."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))
        object.__setattr__(self, "field_lines", _frozen(self.field_lines))

    @property
    def type(self) -> str | None:
        value = self.fields.get("type")
        return value if isinstance(value, str) else None

    @property
    def display_name(self) -> str:
        return self.name if self.name is not None else self.id

    def get(self, key: str) -> FieldValue | None:
        return self.fields.get(key)

    def refs(self) -> Iterator[tuple[str, Ref]]:
        """(field, ref) for every reference this object makes."""
        for key, value in self.fields.items():
            for item in values_of(value):
                if isinstance(item, Ref):
                    yield key, item


@dataclass(frozen=True, kw_only=True)
class ParameterDef:
    """One entry of `parameters`: its id and attributes (type, default, allowedValues, ...)."""

    id: str
    attributes: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)
    """1-based line of the parameter in its source file, when known."""
    attribute_lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _frozen(self.attributes))
        object.__setattr__(self, "attribute_lines", _frozen(self.attribute_lines))

    def line_of(self, attribute: str | None) -> int | None:
        if attribute is not None and attribute in self.attribute_lines:
            return self.attribute_lines[attribute]
        return self.line

    def attr(self, key: str) -> str | tuple[str, ...] | None:
        return self.attributes.get(key)


@dataclass(frozen=True, kw_only=True)
class PipelineDefinition:
    objects: tuple[PipelineObject, ...] = ()
    parameters: tuple[ParameterDef, ...] = ()
    values: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    metadata: Mapping[str, object] | None = None
    source: str | None = field(default=None, compare=False)
    """File name (or '<wire>') the definition came from, for messages."""
    warnings: tuple[Problem, ...] = field(default=(), compare=False)
    """Problems the loader forgave (non-strict JSON, repeated keys, numbers for strings...)."""
    form: str = field(default="file", compare=False)
    """How it was written: `file` (objects/parameters/values) or `wire` (pipelineObjects...)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values))
        if self.metadata is not None:
            object.__setattr__(self, "metadata", _frozen(self.metadata))

    @property
    def kind(self) -> str:
        """`definition` (has objects), `parameters` or `values` (a file with only those), or `empty`."""
        if self.objects:
            return "definition"
        if self.parameters:
            return "parameters"
        if self.values:
            return "values"
        return "empty"

    def object(self, object_id: str) -> PipelineObject | None:
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        return None

    @property
    def by_id(self) -> dict[str, PipelineObject]:
        return {obj.id: obj for obj in self.objects}

    def parameter(self, parameter_id: str) -> ParameterDef | None:
        for p in self.parameters:
            if p.id == parameter_id:
                return p
        return None
