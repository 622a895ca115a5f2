"""Pipeline definitions: loading (file and wire forms), the object-type table, inheritance,
parameters, validation like PutPipelineDefinition, and expression scopes over objects.

    defn = load_file("pipeline.json")              # file form, wire form, values or parameters
    report = validate(defn, parse_parameter_values(["myX=1"]))
    report.raise_for_errors()                      # DefinitionError listing every error
    rdef = resolve(defn)                           # Default and parent inheritance applied
    scope = object_scope(rdef, "MyActivity", runtime={"@scheduledStartTime": start})
"""

from __future__ import annotations

from tailrace.definition.loader import from_file_dict, load_file, loads
from tailrace.definition.model import (
    FieldValue,
    ParameterDef,
    PipelineDefinition,
    PipelineObject,
    Ref,
    values_of,
)
from tailrace.definition.params import (
    PARAMETER_TYPES,
    effective_parameters,
    load_values_file,
    parse_parameter_values,
    values_from_json,
)
from tailrace.definition.period import Period, parse_period
from tailrace.definition.problems import DefinitionError, Problem, ValidationReport
from tailrace.definition.resolve import DEFAULT_ID, ResolvedDefinition, ResolvedObject, resolve
from tailrace.definition.scope import ObjectScope, object_scope
from tailrace.definition.types import Category, FieldSpec, Kind, ObjectType, is_user_field
from tailrace.definition.typetable import ALL_FIELDS, OBJECT_TYPES
from tailrace.definition.validate import validate
from tailrace.definition.wire import from_wire, to_file, to_wire

__all__ = [
    "ALL_FIELDS",
    "DEFAULT_ID",
    "OBJECT_TYPES",
    "PARAMETER_TYPES",
    "Category",
    "DefinitionError",
    "FieldSpec",
    "FieldValue",
    "Kind",
    "ObjectScope",
    "ObjectType",
    "ParameterDef",
    "Period",
    "PipelineDefinition",
    "PipelineObject",
    "Problem",
    "Ref",
    "ResolvedDefinition",
    "ResolvedObject",
    "ValidationReport",
    "effective_parameters",
    "from_file_dict",
    "from_wire",
    "is_user_field",
    "load_file",
    "load_values_file",
    "loads",
    "object_scope",
    "parse_parameter_values",
    "parse_period",
    "resolve",
    "to_file",
    "to_wire",
    "validate",
    "values_from_json",
    "values_of",
]
