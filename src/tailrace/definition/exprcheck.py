"""Checks of the `#{...}` expressions in field values: syntax, function names, the names read.

A name read by an expression must be a runtime field (`@...`), a field of the object (after
inheritance), a parameter, or `node` (in preconditions and actions); a path such as
`input.directoryPath` follows references. Names in Default's fields are read in the scope of
each inheriting object, so only their parameters are checked there.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tailrace.definition.model import PipelineObject, Ref, values_of
from tailrace.definition.params import lookup_parameter
from tailrace.definition.problems import suggest
from tailrace.definition.resolve import DEFAULT_ID, ResolvedObject
from tailrace.definition.types import Category
from tailrace.definition.typetable import OBJECT_TYPES

if TYPE_CHECKING:
    from tailrace.definition.validate import _Validator

PARAMETER_LIKE = re.compile(r"^\*?my")
NOT_EVALUATED = ("type",)
NODE_CATEGORIES = (Category.PRECONDITION, Category.ACTION)


def check_expressions(v: _Validator, obj: PipelineObject, resolved: ResolvedObject) -> None:
    from tailrace.expressions import FUNCTIONS, ExpressionError, parse_template

    typed = resolved.type in OBJECT_TYPES
    for key, value in obj.fields.items():
        if key in NOT_EVALUATED:
            continue
        seen: set[tuple[str, ...]] = set()
        for item in values_of(value):
            if not isinstance(item, str) or "#{" not in item:
                continue
            try:
                template = parse_template(item)
            except ExpressionError as exc:
                col = getattr(exc, "column", None)
                at = f" at column {col} of the value" if col is not None else ""
                v.err(obj, key, f"'{key}' holds an expression that does not parse{at}: {_detail(exc)}")
                continue
            for expr in template.expressions:
                for fname, _col in expr.functions():
                    if fname not in FUNCTIONS:
                        v.err(
                            obj,
                            key,
                            f"'{key}' calls an unknown function '{fname}'; expected one of the "
                            "expression functions" + suggest(fname, FUNCTIONS),
                        )
                for path in expr.paths():
                    if path in seen:
                        continue
                    seen.add(path)
                    _check_path(v, obj, resolved, key, tuple(path), typed)


def _detail(exc: Exception) -> str:
    return getattr(exc, "detail", None) or getattr(exc, "message", None) or str(exc)


def _check_path(
    v: _Validator, obj: PipelineObject, resolved: ResolvedObject, key: str, path: tuple[str, ...], typed: bool
) -> None:
    if not path:
        return
    head = path[0]
    if head.startswith("@"):
        return
    if not typed:
        # Default and parent objects: their fields are evaluated in each inheriting object.
        if head in resolved.fields or lookup_parameter(v.params, head) or head in v.declared:
            return
        if PARAMETER_LIKE.match(head) and obj.id == DEFAULT_ID:
            _undeclared(v, obj, key, head)
        return
    _walk(v, obj, key, path, resolved, 0)


def _walk(
    v: _Validator, obj: PipelineObject, key: str, path: tuple[str, ...], target: ResolvedObject, i: int
) -> None:
    name = path[i]
    shown = "#{" + ".".join(path) + "}"
    last = i == len(path) - 1
    if name.startswith("@"):
        return
    if i == 0 and name == "node" and target.category in NODE_CATEGORIES:
        return
    if name in ("id", "name") and last:
        return
    if name in target.fields:
        if last:
            if any(isinstance(x, str) and "#{" in x for x in values_of(target.fields[name])):
                v.expr_edges.setdefault(f"{obj.id}.{key}", set()).add(f"{target.id}.{name}")
            return
        refs = [x for x in values_of(target.fields[name]) if isinstance(x, Ref)]
        if not refs:
            v.err(
                obj,
                key,
                f"'{shown}' reads '{path[i + 1]}' through '{name}', but '{name}' of '{target.id}' is "
                "a string, not a reference",
            )
            return
        for r in refs:
            nxt = v.rdef.objects.get(r.id)
            if nxt is not None:  # a missing target is reported as a bad reference
                _walk(v, obj, key, path, nxt, i + 1)
        return
    if i == 0:
        found = lookup_parameter(v.params, name) or (name if name in v.declared else None)
        if found is None:
            found = next((p for p in v.declared if p.lstrip("*") == name.lstrip("*")), None)
        if found is not None:
            if not last:
                v.err(obj, key, f"'{shown}': '{name}' is a parameter and has no fields")
            return
        if PARAMETER_LIKE.match(name):
            _undeclared(v, obj, key, name)
            return
    spec = OBJECT_TYPES.get(target.type or "")
    whose = "this object" if i == 0 else f"'{target.id}'"
    if spec is not None and name in spec.fields:
        v.warn(
            obj, key, f"'{shown}' reads '{name}', which is not set on {whose}; it will fail when evaluated"
        )
        return
    pool: list[Any] = list(target.fields) + (list(v.declared) if i == 0 else [])
    v.err(
        obj,
        key,
        f"'{shown}' reads '{name}', which is not a field of {whose}"
        + (" nor a parameter" if i == 0 else "")
        + suggest(name, pool),
    )


def _undeclared(v: _Validator, obj: PipelineObject, key: str, name: str) -> None:
    # AWS rejects an expression naming an undeclared `my...` parameter when the definition is put,
    # so this is an error at every stage, not only at activation.
    v.err(
        obj,
        key,
        f"'#{{{name}}}' reads the parameter '{name}', which is not declared in 'parameters' and has no value; "
        "declare it (or pass --parameter-objects / --parameter-values)",
    )
