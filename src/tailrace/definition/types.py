"""The shape of the object-type table: categories, field kinds, field and type specs.

The table itself (every object type of the Developer Guide, as data) is in `typetable.py`;
the validator and the docs read it, nothing else encodes per-type knowledge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Category(StrEnum):
    ACTIVITY = "activity"
    DATA_NODE = "data node"
    RESOURCE = "resource"
    PRECONDITION = "precondition"
    ACTION = "action"
    SCHEDULE = "schedule"
    DATA_FORMAT = "data format"
    DATABASE = "database"
    CONFIG = "configuration"
    """EmrConfiguration, Property, ShellScriptConfig, HttpProxy and the EBS objects."""
    DEFAULT = "default"
    """The `Default` object (no type): its fields are inherited by every object."""

    def __str__(self) -> str:
        return self.value


class Kind(StrEnum):
    """What a field's value must look like."""

    STRING = "String"
    REF = "Reference"
    PERIOD = "Period"
    DATETIME = "DateTime"
    INTEGER = "Integer"
    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    ENUM = "Enumeration"

    def __str__(self) -> str:
        return self.value


RefTarget = Category | str
"""A reference may point at any object of a category, or at one named type."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind = Kind.STRING
    multi: bool = False
    """Takes several values (a JSON array; a repeated key on the wire)."""
    refs: tuple[RefTarget, ...] = ()
    """For references: what the referenced object may be (empty = any object)."""
    values: tuple[str, ...] = ()
    """For enumerations: the canonical spellings (matched in any case)."""
    min_minutes: int | None = None
    max_minutes: int | None = None
    not_allowed: bool = False
    """Listed by the reference as 'not allowed on this object' (runsOn on a resource...)."""
    note: str = ""
    """Why the field is here if the 2019 reference does not list it (e.g. seen in samples)."""

    def canonical(self, value: str) -> str | None:
        """The enumeration value `value` spells (any case), or None."""
        lowered = value.strip().lower()
        for v in self.values:
            if v.lower() == lowered:
                return v
        return None

    def accepts(self, category: Category | None, type_name: str | None) -> bool:
        if not self.refs:
            return True
        return any(t == category if isinstance(t, Category) else t == type_name for t in self.refs)

    def describe_targets(self) -> str:
        names = [article(t.value if isinstance(t, Category) else t) for t in self.refs]
        if len(names) <= 1:
            return names[0] if names else "an object"
        return ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True, kw_only=True)
class ObjectType:
    name: str
    category: Category
    fields: Mapping[str, FieldSpec]
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    """Groups of which at least one field must be set ('Required Group' in the reference)."""
    exclusive: tuple[tuple[str, str, str], ...] = ()
    """(a, b, severity): fields that must not both be set; severity `error` or `warning`."""
    runs_here: bool = True
    limited: bool = False
    """Runs, with limits the note names (a mapping to configure, fields ignored)."""
    note: str = ""
    """How it runs here, or why it cannot."""
    deprecated: str = ""
    doc_page: str = ""
    """Developer Guide page the fields come from (dp-object-*.md)."""
    schedule_needed: bool = field(default=False)
    """Instances are created per schedule period: needs a Schedule unless the pipeline is ondemand."""

    def field(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)


def article(word: str) -> str:
    """'a Schedule', 'an Ec2Resource', 'an action', 'an S3DataNode'."""
    return ("an " if word[:1].lower() in "aeiou" or word.startswith("S3") else "a ") + word


USER_FIELD = re.compile(r"^\*?my[A-Z_]")
"""User-defined fields: `my` then an upper-case letter or `_` (`myComment`, `my_ref`, `*myKey`)."""


def is_user_field(name: str) -> bool:
    return bool(USER_FIELD.match(name))


def is_runtime_field(name: str) -> bool:
    return name.startswith("@")


# -- builders for the table ----------------------------------------------------------------------

SAMPLES = "not in the 2019 reference; used by published AWS samples"


def s(name: str, *, multi: bool = False, note: str = "", not_allowed: bool = False) -> FieldSpec:
    return FieldSpec(name=name, multi=multi, note=note, not_allowed=not_allowed)


def ref(name: str, *targets: RefTarget, multi: bool = False, not_allowed: bool = False) -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.REF, refs=targets, multi=multi, not_allowed=not_allowed)


def period(name: str, *, min_minutes: int | None = None, max_minutes: int | None = None) -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.PERIOD, min_minutes=min_minutes, max_minutes=max_minutes)


def enum(name: str, *values: str) -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.ENUM, values=values)


def integer(name: str, note: str = "") -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.INTEGER, note=note)


def double(name: str) -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.DOUBLE)


def boolean(name: str) -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.BOOLEAN)


def datetime_(name: str) -> FieldSpec:
    return FieldSpec(name=name, kind=Kind.DATETIME)


def fs(
    strings: str = "", *, multi: str = "", ints: str = "", bools: str = "", samples: str = ""
) -> tuple[FieldSpec, ...]:
    """Plain fields by kind, written as space-separated names."""
    return (
        *(s(n) for n in strings.split()),
        *(s(n, multi=True) for n in multi.split()),
        *(integer(n) for n in ints.split()),
        *(boolean(n) for n in bools.split()),
        *(s(n, note=SAMPLES) for n in samples.split()),
    )
