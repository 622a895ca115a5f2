"""Validation like PutPipelineDefinition: collect every problem, then report them all.

Checked: object types and fields against the type table (with "did you mean"), required and
mutually exclusive fields, field values (enumerations in any case, numbers, periods, literal
date-times), references (missing target, wrong kind), cycles in `parent` and `dependsOn`, the
schedule rules (a schedule where one is needed, ondemand pipelines without Schedules),
parameters and their values, and every `#{...}` expression. Types that this installation
cannot run are a warning, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tailrace.definition.exprcheck import check_expressions
from tailrace.definition.fieldcheck import ONDEMAND_PERIOD, check_value, datetime_value
from tailrace.definition.model import PipelineDefinition, PipelineObject, Ref, values_of
from tailrace.definition.params import effective_parameters_lenient, parameter_problems
from tailrace.definition.problems import FILE_LEVEL_ID, Problem, ValidationReport, error, suggest, warning
from tailrace.definition.resolve import DEFAULT_ID, ResolvedDefinition, ResolvedObject, parent_chain, resolve
from tailrace.definition.typefields import EMR_CLUSTER_IGNORED
from tailrace.definition.types import (
    Category,
    FieldSpec,
    Kind,
    ObjectType,
    article,
    is_runtime_field,
    is_user_field,
)
from tailrace.definition.typetable import ALL_FIELDS, OBJECT_TYPES
from tailrace.limits import Limits

MAX_ID_LENGTH = 1024
MAX_KEY_LENGTH = 256
SCHEDULE_TYPES = ("cron", "ondemand", "timeseries")


def validate(
    defn: PipelineDefinition,
    values: Mapping[str, Any] | None = None,
    *,
    activation: bool = False,
    limits: Limits | None = None,
) -> ValidationReport:
    """Every problem of the definition (and the parameter values, when given).

    With activation=True, parameters left without a value (or used without being declared)
    are errors, as ActivatePipeline would have them; otherwise they are warnings. `limits`
    bounds the number and size of objects and fields (default: AWS Data Pipeline's limits).
    """
    problems: list[Problem] = list(defn.warnings)
    counts = {"objects": len(defn.objects), "parameters": len(defn.parameters), "values": len(defn.values)}
    kind = defn.kind
    if kind in ("parameters", "values", "empty"):
        if kind == "empty":
            problems.append(
                error(
                    FILE_LEVEL_ID,
                    "objects",
                    "expected 'objects' (a pipeline definition), "
                    "'parameters' or 'values'; found none of them",
                )
            )
        elif kind == "parameters" or values:
            problems.extend(parameter_problems(defn, values, activation=False))
        return ValidationReport(problems=tuple(problems), source=defn.source, kind=kind, counts=counts)
    v = _Validator(defn, values, activation, limits or Limits())
    v.run()
    problems.extend(v.problems)
    problems.extend(parameter_problems(defn, values, activation=activation))
    return ValidationReport(problems=tuple(problems), source=defn.source, kind=kind, counts=counts)


class _Validator:
    def __init__(
        self, defn: PipelineDefinition, values: Mapping[str, Any] | None, activation: bool, limits: Limits
    ) -> None:
        self.defn = defn
        self.limits = limits
        self.activation = activation
        self.params = effective_parameters_lenient(defn, values)
        self.declared = {p.id for p in defn.parameters} | set(self.params)
        self.rdef: ResolvedDefinition = resolve(defn, values)
        self.by_id = defn.by_id
        self.problems: list[Problem] = []
        self.ondemand = self.rdef.schedule_type == "ondemand"
        self.expr_edges: dict[str, set[str]] = {}
        """'object.field' -> the fields holding expressions that its expressions read."""

    # -- reporting ------------------------------------------------------------------------------

    def err(self, obj: PipelineObject | None, field: str | None, message: str) -> None:
        self.problems.append(error(obj.id if obj else FILE_LEVEL_ID, field, message, line=_line(obj, field)))

    def warn(self, obj: PipelineObject | None, field: str | None, message: str) -> None:
        self.problems.append(
            warning(obj.id if obj else FILE_LEVEL_ID, field, message, line=_line(obj, field))
        )

    # -- driver ---------------------------------------------------------------------------------

    def run(self) -> None:
        seen: set[str] = set()
        most = self.limits.objects_per_pipeline
        if len(self.defn.objects) > most:
            self.err(
                None,
                "objects",
                f"the definition has {len(self.defn.objects)} objects; a pipeline holds at most {most} "
                "(the [limits] objects_per_pipeline of this server)",
            )
        for obj in self.defn.objects:
            if obj.id in seen:
                self.err(obj, "id", f"the id '{obj.id}' is used by more than one object; ids must be unique")
            seen.add(obj.id)
            self.check_sizes(obj)
        used_as_parent = {
            v.id for o in self.defn.objects for v in values_of(o.fields.get("parent")) if isinstance(v, Ref)
        }
        for obj in self.defn.objects:
            resolved = self.rdef.objects[obj.id]
            spec = self.type_of(obj, resolved, used_as_parent)
            self.check_fields(obj, spec)
            self.check_refs(obj, spec)
            if spec is not None:
                self.check_groups(obj, resolved, spec)
                self.check_type_notes(obj, spec)
            self.check_schedule(obj, resolved, spec)
            check_expressions(self, obj, resolved)
        self.check_parent_cycles()
        self.check_depends_cycles()
        self.check_expression_cycles()

    # -- types and fields -----------------------------------------------------------------------

    def check_sizes(self, obj: PipelineObject) -> None:
        """The API's limits on ids, names and field keys (botocore's shapes), and the service's
        limits on fields per object and on the bytes of names, values and whole objects."""
        limits = self.limits
        if len(obj.id) > MAX_ID_LENGTH:
            self.err(obj, "id", f"an object id is at most {MAX_ID_LENGTH} characters; found {len(obj.id)}")
        elif len(obj.id.encode()) > limits.field_name_bytes:
            self.err(
                obj,
                "id",
                f"an object id is at most {limits.field_name_bytes} bytes (UTF-8); found {len(obj.id.encode())}",
            )
        if obj.name is not None and not 1 <= len(obj.name) <= MAX_ID_LENGTH:
            self.err(obj, "name", f"a name is 1 to {MAX_ID_LENGTH} characters; found {len(obj.name)}")
        size = len(obj.id.encode()) + len((obj.name or "").encode())
        entries = 0
        for key, value in obj.fields.items():
            key_bytes = len(key.encode())
            if not 1 <= len(key) <= MAX_KEY_LENGTH or key_bytes > limits.field_name_bytes:
                self.err(
                    obj,
                    key[:40],
                    f"a field name is 1 to {min(MAX_KEY_LENGTH, limits.field_name_bytes)} characters "
                    f"({limits.field_name_bytes} bytes); found {len(key)} ({key_bytes} bytes)",
                )
            items = values_of(value)
            entries += len(items)
            for item in items:
                item_bytes = len((item.id if isinstance(item, Ref) else str(item)).encode())
                size += key_bytes + item_bytes
                if item_bytes > limits.field_value_bytes:
                    self.err(
                        obj,
                        key,
                        f"'{key}' holds a value of {item_bytes:,} bytes (UTF-8); a field value is at most "
                        f"{limits.field_value_bytes:,} bytes (keep long scripts in a file: scriptUri)",
                    )
        if entries > limits.fields_per_object:
            self.err(
                obj,
                None,
                f"the object has {entries} fields; an object holds at most {limits.fields_per_object} "
                "(each value of a multi-valued field counts)",
            )
        if size > limits.object_bytes:
            self.err(
                obj,
                None,
                f"the object is {size:,} bytes (UTF-8: id, name, field names and values); an object is "
                f"at most {limits.object_bytes:,} bytes",
            )

    def type_of(
        self, obj: PipelineObject, resolved: ResolvedObject, used_as_parent: set[str]
    ) -> ObjectType | None:
        raw = obj.fields.get("type")
        if raw is None:
            if obj.id == DEFAULT_ID:
                return None
            if resolved.type is not None:
                return OBJECT_TYPES.get(resolved.type)
            if obj.id not in used_as_parent:
                self.warn(
                    obj,
                    "type",
                    "the object has no type and no object names it as its parent, so it does "
                    "nothing; expected a 'type' such as " + _examples(),
                )
            return None
        if not isinstance(raw, str):
            self.err(obj, "type", f"expected one type name; found {_describe(raw)}")
            return None
        if obj.id == DEFAULT_ID:
            self.warn(
                obj,
                "type",
                f"Default has type '{raw}'; its fields are inherited by every object, its type is not",
            )
        spec = OBJECT_TYPES.get(raw)
        if spec is None:
            self.err(
                obj,
                "type",
                f"unknown object type '{raw}'; expected one of the Data Pipeline object types"
                + suggest(raw, OBJECT_TYPES),
            )
        return spec

    def field_spec(self, spec: ObjectType | None, key: str) -> FieldSpec | None:
        if spec is not None:
            return spec.fields.get(key)
        return ALL_FIELDS.get(key)

    def check_fields(self, obj: PipelineObject, spec: ObjectType | None) -> None:
        known_type = spec is not None or obj.fields.get("type") is None
        for key, value in obj.fields.items():
            items = values_of(value)
            for item in items:
                if isinstance(item, str) and item == "" and key != "type":
                    self.err(
                        obj, key, f"'{key}' is empty; expected a value (the service refuses empty fields)"
                    )
            if key == "type" or is_user_field(key) or not known_type:
                continue
            if is_runtime_field(key):
                self.warn(
                    obj,
                    key,
                    f"'{key}' is a runtime field that the service sets; the value written here is ignored",
                )
                continue
            fspec = self.field_spec(spec, key)
            if fspec is None:
                where = (
                    article(spec.name) if spec else ("Default" if obj.id == DEFAULT_ID else "any object type")
                )
                pool = list(spec.fields) if spec else list(ALL_FIELDS)
                self.err(
                    obj,
                    key,
                    f"unknown field '{key}': it is not a field of {where}"
                    + suggest(key, pool)
                    + _elsewhere(key, spec),
                )
                continue
            if fspec.not_allowed and spec is not None:
                self.err(obj, key, f"'{key}' is not allowed on {article(spec.name)}")
                continue
            if len(items) > 1 and not fspec.multi:
                self.err(obj, key, f"'{key}' takes one value; found {len(items)}")
            for item in items:
                if isinstance(item, str):
                    self.check_value(obj, fspec, item)

    def check_value(self, obj: PipelineObject, fspec: FieldSpec, item: str) -> None:
        if fspec.kind == Kind.REF:
            hint = f' (\'{item}\' is an object here: write {{"ref": "{item}"}})' if item in self.by_id else ""
            self.err(
                obj,
                fspec.name,
                f'\'{fspec.name}\' expects a reference {{"ref": "<object id>"}}; found the '
                f"string '{item}'{hint}",
            )
            return
        if item == "":
            return

        def unchecked(text: str) -> None:
            return None

        problem = check_value(fspec, item, self.params, on_unchecked=unchecked)
        if problem:
            self.err(
                obj,
                fspec.name,
                problem if problem.startswith("INVALID_FIELD_VALUE") else f"'{fspec.name}': " + problem,
            )

    def check_refs(self, obj: PipelineObject, spec: ObjectType | None) -> None:
        for key, ref in obj.refs():
            fspec = self.field_spec(spec, key)
            if fspec is not None and fspec.kind != Kind.REF and not is_user_field(key) and key != "type":
                self.err(obj, key, f"'{key}' expects {_article(fspec.kind)}; found a reference to '{ref.id}'")
                continue
            target = self.rdef.objects.get(ref.id)
            if target is None:
                if key == "schedule" and self.ondemand:
                    self.warn(
                        obj,
                        key,
                        f"'schedule' refers to '{ref.id}', which does not exist; ondemand "
                        "pipelines do not use schedules, so it is ignored",
                    )
                else:
                    self.err(
                        obj,
                        key,
                        f"'{key}' refers to '{ref.id}', which is not an object of this definition"
                        + suggest(ref.id, self.by_id),
                    )
                continue
            if fspec is None or fspec.kind != Kind.REF or not fspec.refs or key == "parent":
                continue
            if target.type is None:
                self.err(
                    obj, key, f"'{key}' must refer to {fspec.describe_targets()}; '{ref.id}' has no type"
                )
            elif target.type in OBJECT_TYPES and not fspec.accepts(target.category, target.type):
                self.err(
                    obj,
                    key,
                    f"'{key}' must refer to {fspec.describe_targets()}; '{ref.id}' is "
                    f"{article(target.type)} ({target.category})",
                )

    def check_groups(self, obj: PipelineObject, resolved: ResolvedObject, spec: ObjectType) -> None:
        have = resolved.fields
        for name in spec.required:
            if name not in have:
                self.err(
                    obj,
                    name,
                    f"missing required field '{name}' ({article(spec.name)} needs it; set it here, on a "
                    "parent or on Default)",
                )
        for group in spec.one_of:
            if not any(name in have for name in group):
                self.err(
                    obj,
                    group[0],
                    f"{article(spec.name)} needs one of {' or '.join(repr(g) for g in group)}; found neither",
                )
        for a, b, severity in spec.exclusive:
            if a in have and b in have:
                if (a, b) == ("scriptArgument", "scriptUri"):
                    text = (
                        "'scriptArgument' with 'scriptUri': the Developer Guide says scriptArgument works only "
                        "with 'command'; AWS samples use both, and tailrace passes the arguments to the script"
                    )
                else:
                    text = f"'{a}' and '{b}' exclude each other; set only one of them"
                if severity == "error":
                    self.err(obj, a if a in obj.fields else b, text)
                else:
                    self.warn(obj, a if a in obj.fields else b, text)

    def check_type_notes(self, obj: PipelineObject, spec: ObjectType) -> None:
        if not spec.runs_here:
            self.warn(
                obj, "type", f"{spec.name} is accepted but cannot run on this installation: {spec.note}"
            )
        if spec.deprecated:
            self.warn(obj, "type", f"{spec.name} is deprecated: {spec.deprecated}")
        if spec.name == "EmrCluster":
            for key in sorted(set(obj.fields) & EMR_CLUSTER_IGNORED):
                self.warn(
                    obj,
                    key,
                    f"'{key}' has no meaning here and is ignored: the cluster is the [spark] master "
                    "(or the local worker pool), not EMR instances (docs/engines.md)",
                )

    # -- schedules ------------------------------------------------------------------------------

    def check_schedule(self, obj: PipelineObject, resolved: ResolvedObject, spec: ObjectType | None) -> None:
        if self.ondemand and "lateAfterTimeout" in obj.fields:
            self.warn(
                obj,
                "lateAfterTimeout",
                "'lateAfterTimeout' does not apply to ondemand pipelines and is ignored",
            )
        own_type = obj.fields.get("scheduleType")
        if isinstance(own_type, str) and own_type.strip().lower() in SCHEDULE_TYPES:
            st = own_type.strip().lower()
            if st == "ondemand" and obj.id != DEFAULT_ID:
                self.err(
                    obj,
                    "scheduleType",
                    "'scheduleType' ondemand must be set on Default (it applies to the "
                    f"whole pipeline); found it on '{obj.id}'",
                )
            elif self.ondemand and st != "ondemand":
                self.err(
                    obj,
                    "scheduleType",
                    f"the pipeline is ondemand (Default), so it must be the only "
                    f"scheduleType; found '{own_type}'",
                )
        if spec is not None and spec.category == Category.SCHEDULE:
            self.check_schedule_object(obj, resolved)
        sched = obj.fields.get("schedule")
        if self.ondemand and isinstance(sched, Ref):
            target = self.rdef.objects.get(sched.id)
            if target is not None and target.type == "Schedule" and not _is_ondemand_schedule(target):
                self.err(
                    obj,
                    "schedule",
                    f"an ondemand pipeline runs once per activation and cannot use Schedule "
                    f"'{sched.id}' (period {target.fields.get('period')!s}); remove the schedule or set "
                    "scheduleType cron or timeseries on Default",
                )
        if (
            spec is not None
            and spec.schedule_needed
            and not self.ondemand
            and "schedule" not in resolved.fields
        ):
            self.err(
                obj,
                "schedule",
                f"{article(spec.name)} needs a schedule: set 'schedule' on it, on a parent or on "
                "Default, or make the pipeline ondemand (scheduleType ondemand on Default)",
            )

    def check_schedule_object(self, obj: PipelineObject, resolved: ResolvedObject) -> None:
        fields = resolved.fields
        if _is_ondemand_schedule(resolved) and not self.ondemand:
            self.err(
                obj,
                "period" if "period" in obj.fields else "startAt",
                "ONDEMAND_PERIOD and "
                "ONDEMAND_ACTIVATION_TIME belong to ondemand pipelines; set scheduleType ondemand on Default "
                "or give a period and a start",
            )
        start, end = fields.get("startDateTime"), fields.get("endDateTime")
        if isinstance(start, str) and isinstance(end, str):
            s, e = datetime_value(start), datetime_value(end)
            if s is not None and e is not None and e <= s:
                self.err(
                    obj,
                    "endDateTime",
                    f"'endDateTime' must be later than 'startDateTime'; found {end} after a start of {start}",
                )
        occ = fields.get("occurrences")
        if isinstance(occ, str) and occ.strip().lstrip("+").isdigit() and int(occ) < 1:
            self.err(obj, "occurrences", f"'occurrences' must be at least 1; found '{occ}'")

    # -- cycles ---------------------------------------------------------------------------------

    def check_parent_cycles(self) -> None:
        reported: set[frozenset[str]] = set()
        for obj in self.defn.objects:
            chain, loops = parent_chain(self.by_id, obj.id)
            if not loops:
                continue
            parent = self.by_id[chain[-1]].fields.get("parent")
            start = parent.id if isinstance(parent, Ref) else chain[-1]
            cycle = chain[chain.index(start) :] if start in chain else chain
            key = frozenset(cycle)
            if key in reported:
                continue
            reported.add(key)
            first = min(cycle)
            i = cycle.index(first)
            ordered = cycle[i:] + cycle[:i] + [first]
            self.err(self.by_id[first], "parent", "'parent' references form a cycle: " + " -> ".join(ordered))

    def check_depends_cycles(self) -> None:
        graph: dict[str, list[str]] = {}
        for oid, robj in self.rdef.objects.items():
            graph[oid] = [
                v.id
                for v in values_of(robj.fields.get("dependsOn"))
                if isinstance(v, Ref) and v.id in self.rdef.objects
            ]
        for cycle in _cycles(graph):
            self.err(
                self.by_id[cycle[0]],
                "dependsOn",
                "'dependsOn' references form a cycle: " + " -> ".join([*cycle, cycle[0]]),
            )

    def check_expression_cycles(self) -> None:
        graph = {node: sorted(targets) for node, targets in self.expr_edges.items()}
        for cycle in _cycles(graph):
            oid, _, field = cycle[0].partition(".")
            obj = self.by_id.get(oid)
            self.err(
                obj,
                field,
                f"'{field}' reads itself through its expressions: " + " -> ".join([*cycle, cycle[0]]),
            )


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One list per strongly connected component that loops (Tarjan), rotated to its smallest id."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succ = graph.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in graph.get(node, []):
                    out.append(_ordered_cycle(comp, graph))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def _ordered_cycle(comp: list[str], graph: Mapping[str, list[str]]) -> list[str]:
    members = set(comp)
    start = min(comp)
    path = [start]
    seen = {start}
    node = start
    while True:
        nxt = next((n for n in graph.get(node, []) if n in members and n not in seen), None)
        if nxt is None:
            return path
        path.append(nxt)
        seen.add(nxt)
        node = nxt


def _is_ondemand_schedule(obj: ResolvedObject) -> bool:
    period, start_at = obj.fields.get("period"), obj.fields.get("startAt")
    return (isinstance(period, str) and period.strip().upper() == ONDEMAND_PERIOD) or (
        isinstance(start_at, str) and start_at.strip().upper() == "ONDEMAND_ACTIVATION_TIME"
    )


def _line(obj: PipelineObject | None, field: str | None) -> int | None:
    if obj is None:
        return None
    if field is not None and field in obj.field_lines:
        return obj.field_lines[field]
    return obj.line


def _describe(value: object) -> str:
    if isinstance(value, Ref):
        return f"a reference to '{value.id}'"
    if isinstance(value, tuple):
        return f"{len(value)} values"
    return repr(value)


def _article(kind: Kind) -> str:
    return {Kind.INTEGER: "an Integer", Kind.ENUM: "an Enumeration value"}.get(kind, f"a {kind}")


def _examples() -> str:
    return (
        "ShellCommandActivity, S3DataNode, Schedule or Ec2Resource (or make another object name it as parent)"
    )


def _elsewhere(key: str, spec: ObjectType | None) -> str:
    if spec is None:
        return ""
    owners = [t.name for t in OBJECT_TYPES.values() if key in t.fields and not t.fields[key].not_allowed]
    if not owners:
        return ""
    shown = ", ".join(owners[:4]) + (" ..." if len(owners) > 4 else "")
    return f" ('{key}' is a field of {shown})"
