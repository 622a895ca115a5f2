"""Inheritance: `parent` chains and the `Default` object.

An object's fields are its own over its parent's (resolved) over Default's: Default is included
in every object that does not name a parent, and a parent chain ends at Default. `parent` itself
is not passed down (an object sees its own parent, not its grandparent), and neither is `type`
from Default. A missing or cyclic parent is skipped here; `validate` reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tailrace.definition.model import FieldValue, PipelineDefinition, PipelineObject, Ref, values_of
from tailrace.definition.problems import DefinitionError
from tailrace.definition.types import Category
from tailrace.definition.typetable import OBJECT_TYPES
from tailrace.errors import Location

DEFAULT_ID = "Default"


@dataclass(frozen=True, kw_only=True)
class ResolvedObject:
    id: str
    name: str
    type: str | None
    category: Category | None
    fields: Mapping[str, FieldValue]
    own: PipelineObject | None = field(default=None, compare=False, repr=False)
    """The object as written (before inheritance), for messages and positions."""

    def get(self, key: str) -> FieldValue | None:
        return self.fields.get(key)

    def has(self, key: str) -> bool:
        return key in self.fields

    def string(self, key: str) -> str | None:
        """The field's single string value; DefinitionError if it is a reference or multi-valued."""
        value = self.fields.get(key)
        if value is None or isinstance(value, str):
            return value
        found = f"a reference to '{value.id}'" if isinstance(value, Ref) else f"{len(value)} values"
        raise DefinitionError(f"expected one string value; found {found}", self._where(key))

    def strings(self, key: str) -> tuple[str, ...]:
        """Every string value of the field (references are an error)."""
        out = []
        for item in values_of(self.fields.get(key)):
            if isinstance(item, Ref):
                raise DefinitionError(
                    f"expected string values; found a reference to '{item.id}'", self._where(key)
                )
            out.append(item)
        return tuple(out)

    def ref(self, key: str) -> str | None:
        """The id the field references; DefinitionError if it is a string or several references."""
        value = self.fields.get(key)
        if value is None:
            return None
        if isinstance(value, Ref):
            return value.id
        found = f"the string {value!r}" if isinstance(value, str) else f"{len(value)} values"
        raise DefinitionError(f'expected a reference {{"ref": "<id>"}}; found {found}', self._where(key))

    def refs(self, key: str) -> tuple[str, ...]:
        """Every id the field references (strings are an error)."""
        out = []
        for item in values_of(self.fields.get(key)):
            if not isinstance(item, Ref):
                raise DefinitionError(
                    f'expected references {{"ref": "<id>"}}; found the string {item!r}', self._where(key)
                )
            out.append(item.id)
        return tuple(out)

    def _where(self, key: str) -> Location:
        line = self.own.field_lines.get(key) if self.own is not None else None
        return Location(object_id=self.id, field=key, line=line)


@dataclass(frozen=True, kw_only=True)
class ResolvedDefinition:
    definition: PipelineDefinition
    objects: Mapping[str, ResolvedObject]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Effective parameter values (declared defaults with values applied)."""

    def get(self, object_id: str) -> ResolvedObject | None:
        return self.objects.get(object_id)

    def of_category(self, category: Category) -> list[ResolvedObject]:
        return [o for o in self.objects.values() if o.category == category]

    @property
    def default(self) -> ResolvedObject | None:
        return self.objects.get(DEFAULT_ID)

    @property
    def schedule_type(self) -> str:
        """The pipeline's scheduleType as Default sets it (lower case; `cron` when unset)."""
        d = self.default
        value = d.fields.get("scheduleType") if d else None
        return value.strip().lower() if isinstance(value, str) and value.strip() else "cron"


def category_of(type_name: str | None, object_id: str) -> Category | None:
    if type_name is None:
        return Category.DEFAULT if object_id == DEFAULT_ID else None
    spec = OBJECT_TYPES.get(type_name)
    return spec.category if spec else None


def parent_chain(by_id: Mapping[str, PipelineObject], object_id: str) -> tuple[list[str], bool]:
    """Ids from the object up its `parent` refs (not including Default), and whether it loops."""
    chain = [object_id]
    seen = {object_id}
    current = by_id.get(object_id)
    while current is not None:
        parent = current.fields.get("parent")
        if not isinstance(parent, Ref) or parent.id not in by_id:
            return chain, False
        if parent.id in seen:
            return chain, True
        chain.append(parent.id)
        seen.add(parent.id)
        current = by_id[parent.id]
    return chain, False


def resolve_fields(
    by_id: Mapping[str, PipelineObject], object_id: str
) -> tuple[dict[str, FieldValue], str | None]:
    """(fields, type) of one object after inheritance."""
    chain, _ = parent_chain(by_id, object_id)
    merged: dict[str, FieldValue] = {}
    default = by_id.get(DEFAULT_ID)
    if default is not None and object_id != DEFAULT_ID and DEFAULT_ID not in chain:
        merged.update({k: v for k, v in default.fields.items() if k not in ("parent", "type")})
    type_name: str | None = None
    for oid in reversed(chain):
        obj = by_id[oid]
        own = dict(obj.fields)
        if oid != object_id:
            own.pop("parent", None)
        merged.update(own)
        t = obj.fields.get("type")
        if isinstance(t, str):
            type_name = t
    return merged, type_name


def resolve(defn: PipelineDefinition, values: Mapping[str, Any] | None = None) -> ResolvedDefinition:
    """Apply Default and parent inheritance to every object (never raises for bad references)."""
    from tailrace.definition.params import effective_parameters_lenient

    objects: dict[str, ResolvedObject] = {}
    by_id = defn.by_id
    for obj in defn.objects:
        fields, type_name = resolve_fields(by_id, obj.id)
        objects[obj.id] = ResolvedObject(
            id=obj.id,
            name=obj.display_name,
            type=type_name,
            category=category_of(type_name, obj.id),
            fields=MappingProxyType(fields),
            own=obj,
        )
    params = effective_parameters_lenient(defn, values)
    return ResolvedDefinition(definition=defn, objects=MappingProxyType(objects), parameters=params)
