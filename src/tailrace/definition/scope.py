"""Expression scopes over resolved objects (the names `#{...}` can read in an object).

`object_scope(rdef, id, ...)` answers `lookup(name)` in this order:

1. `@name`: from `runtime` (`@scheduledStartTime`, `@pipelineId`...); `@id` defaults to the id;
2. `node`: from `runtime` (preconditions and actions get the object they act for);
3. the object's fields after inheritance. A string holding `#{...}` is rendered in this same
   scope (a field that reads itself, directly or not, is an ExpressionError); a literal
   date-time comes back as a datetime; a reference gives the referenced object's scope
   (`ref_scope(id)` when given, so callers can hand out same-period instance scopes; otherwise
   an object scope with the same runtime minus `@id` and `node`); several values give a list;
4. `id`, `name`;
5. parameters by id (`*myKey` and `myKey` name the same masked parameter), typed by their
   declaration (Integer -> int, Double -> float, isArray -> list).

Unknown names raise KeyError, as the Scope protocol asks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from tailrace.definition.fieldcheck import datetime_value
from tailrace.definition.model import Ref, values_of
from tailrace.definition.params import is_array, lookup_parameter, param_type
from tailrace.definition.resolve import ResolvedDefinition

MAX_DEPTH = 64
NOT_EVALUATED = ("type",)
# Fields being rendered on this thread, shared by every scope (ref_scope may build new ones), so a
# field that reads itself through other objects is caught rather than recursing without end.
_rendering = threading.local()


def _active_stack() -> list[tuple[str, str]]:
    stack = getattr(_rendering, "stack", None)
    if stack is None:
        stack = _rendering.stack = []
    return stack


class ObjectScope:
    """The Scope of one resolved object (see the module docstring for the lookup order)."""

    def __init__(
        self,
        rdef: ResolvedDefinition,
        object_id: str,
        *,
        runtime: Mapping[str, Any],
        parameters: Mapping[str, Any],
        ref_scope: Callable[[str], Any] | None,
    ) -> None:
        if object_id not in rdef.objects:
            raise KeyError(object_id)
        self.rdef = rdef
        self.object_id = object_id
        self.runtime = runtime
        self.parameters = parameters
        self.ref_scope = ref_scope

    def __repr__(self) -> str:
        return f"ObjectScope({self.object_id!r})"

    def lookup(self, name: str) -> Any:
        if name.startswith("@"):
            if name in self.runtime:
                return self.runtime[name]
            if name == "@id":
                return self.object_id
            raise KeyError(name)
        if name == "node" and "node" in self.runtime:
            return self.runtime["node"]
        obj = self.rdef.objects[self.object_id]
        if name in obj.fields:
            return self._field(name, obj.fields[name])
        if name == "id":
            return self.object_id
        if name == "name":
            return obj.name
        found = lookup_parameter(self.parameters, name)
        if found is not None:
            return self._parameter(*found)
        raise KeyError(name)

    def names(self) -> list[str]:
        """Every name lookup can answer (for "did you mean" hints)."""
        obj = self.rdef.objects[self.object_id]
        found = [*self.runtime, "@id", *obj.fields, "id", "name", *self.parameters]
        return list(dict.fromkeys(found))

    def _field(self, name: str, value: Any) -> Any:
        items = [self._item(name, item) for item in values_of(value)]
        return items[0] if len(items) == 1 else items

    def _item(self, name: str, item: Any) -> Any:
        if isinstance(item, Ref):
            return self._scope_of(item.id)
        if name in NOT_EVALUATED or "#{" not in item:
            return _typed(item)
        from tailrace.expressions import ExpressionError, render

        key = (self.object_id, name)
        active = _active_stack()
        if key in active:
            chain = " -> ".join(f"{o}.{f}" for o, f in [*active[active.index(key) :], key])
            raise ExpressionError(f"a field reads itself: {chain}")
        if len(active) >= MAX_DEPTH:
            raise ExpressionError(
                f"expressions nest deeper than {MAX_DEPTH} fields (at {self.object_id}.{name})"
            )
        active.append(key)
        try:
            return _typed(render(item, self))
        finally:
            active.pop()

    def _scope_of(self, ref_id: str) -> Any:
        if self.ref_scope is not None:
            return self.ref_scope(ref_id)
        if ref_id not in self.rdef.objects:
            from tailrace.expressions import ExpressionError

            raise ExpressionError(
                f"'{self.object_id}' refers to '{ref_id}', which is not an object of the pipeline"
            )
        runtime = {k: v for k, v in self.runtime.items() if k not in ("@id", "node")}
        return ObjectScope(self.rdef, ref_id, runtime=runtime, parameters=self.parameters, ref_scope=None)

    def _parameter(self, pid: str, value: Any) -> Any:
        decl = self.rdef.definition.parameter(pid)
        values = list(value) if isinstance(value, list | tuple) else [value]
        ptype = param_type(decl) if decl is not None else "String"
        converted = [_convert(ptype, v) for v in values]
        if (decl is not None and is_array(decl)) or len(converted) != 1:
            return converted
        return converted[0]


def _typed(text: Any) -> Any:
    if isinstance(text, str):
        dt = datetime_value(text)
        if dt is not None:
            return dt
    return text


def _convert(ptype: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if ptype == "Integer":
            return int(value)
        if ptype == "Double":
            return float(value)
    except ValueError:
        return value
    return value


def object_scope(
    rdef: ResolvedDefinition,
    object_id: str,
    *,
    runtime: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    ref_scope: Callable[[str], Any] | None = None,
) -> ObjectScope:
    """An expressions Scope over one resolved object; KeyError if there is no such object."""
    return ObjectScope(
        rdef,
        object_id,
        runtime=dict(runtime or {}),
        parameters=rdef.parameters if parameters is None else parameters,
        ref_scope=ref_scope,
    )
