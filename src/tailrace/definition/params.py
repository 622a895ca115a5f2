"""Parameters (`parameters`), their values (`values`, `--parameter-values`, a values file).

A parameter is declared with an id (`my...`; a leading `*` masks it), a type (String, Integer,
Double or AWS::S3::ObjectKey), and optionally `default`, `optional`, `allowedValues` and
`isArray`. Values given on the command line or in a values file replace the definition's
`values` (as with the AWS CLI); a repeated key gives an array.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tailrace.definition.jsonload import JNumber, parse_json
from tailrace.definition.model import ParameterDef, PipelineDefinition
from tailrace.definition.problems import (
    FILE_LEVEL_ID,
    DefinitionError,
    Problem,
    ValidationReport,
    error,
    suggest,
    warning,
)
from tailrace.errors import Location

PARAMETER_TYPES = ("String", "Integer", "Double", "AWS::S3::ObjectKey")
KNOWN_ATTRIBUTES = (
    "type",
    "description",
    "default",
    "optional",
    "allowedValues",
    "isArray",
    "watermark",
    "helpText",
    "helpLink",
)
MAX_PARAMETERS = 50
PARAMETER_ID = re.compile(r"^\*?my")
_INTEGER = re.compile(r"^[+-]?\d+$")

Values = dict[str, str | tuple[str, ...]]


# -- reading values -------------------------------------------------------------------------------


def parse_parameter_values(items: Iterable[str]) -> Values:
    """`["k=v", "k=v2", "j=w"]` -> `{"k": ("v", "v2"), "j": "w"}` (a repeated key is an array)."""
    grouped: dict[str, list[str]] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise DefinitionError(f"expected a parameter value as KEY=VALUE; found {item!r}")
        key, _, value = item.partition("=")
        key = key.strip()
        if not key:
            raise DefinitionError(f"expected a parameter id before '=' in {item!r}")
        grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else tuple(v) for k, v in grouped.items()}


def load_values_file(path: str | Path) -> Values:
    """A values file: `{"values": {...}}`, a bare mapping, or `{"parameterValues": [...]}`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"cannot read the values file: {exc}", Location(source=str(p)))
    return values_from_json(parse_json(text, source=str(p)).value, source=str(p))


def values_from_json(data: Any, *, source: str = "<values>") -> Values:
    if isinstance(data, Mapping) and "values" in data:
        data = data["values"]
    elif isinstance(data, Mapping) and "parameterValues" in data:
        entries = data["parameterValues"]
        if not isinstance(entries, list):
            raise DefinitionError(
                "expected 'parameterValues' to be a list of {id, stringValue}", Location(source=source)
            )
        flat: list[str] = []
        for e in entries:
            if (
                not isinstance(e, Mapping)
                or not isinstance(e.get("id"), str)
                or not isinstance(e.get("stringValue"), str)
            ):
                raise DefinitionError(
                    f"expected {{id, stringValue}} strings; found {e!r}"[:300], Location(source=source)
                )
            flat.append(f"{e['id']}={e['stringValue']}")
        return parse_parameter_values(flat)
    if not isinstance(data, Mapping):
        raise DefinitionError(
            f'expected a values object ({{"values": {{"myParam": "value"}}}}); found {type(data).__name__}',
            Location(source=source),
        )
    out: Values = {}
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        texts = []
        for item in items:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, JNumber | int | float) and not isinstance(item, bool):
                texts.append(item.text if isinstance(item, JNumber) else str(item))
            else:
                raise DefinitionError(
                    f"expected a string or an array of strings for '{key}'; found {item!r}"[:300],
                    Location(source=source, object_id=key),
                )
        if texts:
            out[key] = texts[0] if len(texts) == 1 else tuple(texts)
    return out


# -- effective values -----------------------------------------------------------------------------


def given_values(defn: PipelineDefinition, values: Mapping[str, Any] | None) -> Values:
    """Values passed in replace the definition's `values`; none passed keeps them."""
    if not values:
        return dict(defn.values)
    out: Values = {}
    for k, v in values.items():
        out[k] = tuple(str(x) for x in v) if isinstance(v, list | tuple) else str(v)
    return out


def _flag(p: ParameterDef, name: str) -> bool:
    value = p.attr(name)
    return isinstance(value, str) and value.strip().lower() == "true"


def is_array(p: ParameterDef) -> bool:
    return _flag(p, "isArray")


def is_optional(p: ParameterDef) -> bool:
    return _flag(p, "optional")


def param_type(p: ParameterDef) -> str:
    t = p.attr("type")
    if isinstance(t, str):
        for known in PARAMETER_TYPES:
            if known.lower() == t.strip().lower():
                return known
    return "String"


def _as_tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def effective_parameters_lenient(
    defn: PipelineDefinition, values: Mapping[str, Any] | None = None
) -> dict[str, str | list[str]]:
    """Declared defaults with values applied (undeclared values too); never raises."""
    given = given_values(defn, values)
    out: dict[str, str | list[str]] = {}
    for p in defn.parameters:
        value = given.get(p.id, p.attr("default"))
        if value is None:
            continue
        out[p.id] = list(_as_tuple(value)) if is_array(p) or isinstance(value, tuple) else value
    for key, value in given.items():
        if key not in out:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def effective_parameters(
    defn: PipelineDefinition, values: Mapping[str, Any] | None = None
) -> dict[str, str | list[str]]:
    """Declared parameters with defaults and values applied, types checked.

    Raises DefinitionError listing every problem (a value of the wrong type, outside
    allowedValues, several values for a non-array parameter, a required one left unset).
    """
    problems = [p for p in parameter_problems(defn, values, activation=True) if p.is_error]
    if problems:
        raise DefinitionError(
            ValidationReport(problems=tuple(problems), source=defn.source, kind="parameters")
        )
    return effective_parameters_lenient(defn, values)


def lookup_parameter(params: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    """The (id, value) a name refers to: `*myX` and `myX` name the same masked parameter."""
    for candidate in (name, name[1:] if name.startswith("*") else "*" + name):
        if candidate in params:
            return candidate, params[candidate]
    return None


# -- checks ---------------------------------------------------------------------------------------


def _perr(p: ParameterDef, attribute: str | None, message: str, *, positioned: bool = True) -> Problem:
    return error(p.id, attribute, message, line=p.line_of(attribute) if positioned else None)


def _pwarn(p: ParameterDef, attribute: str | None, message: str) -> Problem:
    return warning(p.id, attribute, message, line=p.line_of(attribute))


def type_problem(ptype: str, value: str) -> str | None:
    """Why `value` is not a `ptype`, or None."""
    if ptype == "Integer" and not _INTEGER.match(value.strip()):
        return f"expected an Integer; found '{value}'"
    if ptype == "Double":
        try:
            float(value)
        except ValueError:
            return f"expected a Double; found '{value}'"
    return None


def parameter_problems(
    defn: PipelineDefinition, values: Mapping[str, Any] | None = None, *, activation: bool = False
) -> list[Problem]:
    """Every problem with the declarations and the values, in the order of the definition."""
    out: list[Problem] = []
    declared: dict[str, ParameterDef] = {}
    if len(defn.parameters) > MAX_PARAMETERS:
        out.append(
            error(
                FILE_LEVEL_ID,
                "parameters",
                f"at most {MAX_PARAMETERS} parameters are allowed; found {len(defn.parameters)}",
            )
        )
    for p in defn.parameters:
        if p.id in declared:
            out.append(_perr(p, "id", f"parameter '{p.id}' is declared more than once"))
        declared[p.id] = p
        out.extend(_declaration_problems(p))
    given = given_values(defn, values)
    for key, value in given.items():
        found = lookup_parameter(declared, key)
        if found is None:
            out.append(
                warning(
                    key,
                    None,
                    f"a value is given for '{key}', which is not declared in 'parameters'"
                    + suggest(key, declared),
                )
            )
            continue
        out.extend(_value_problems(found[1], _as_tuple(value), "value"))
    for p in defn.parameters:
        if lookup_parameter(given, p.id) is None and p.attr("default") is None and not is_optional(p):
            text = (
                f"parameter '{p.id}' has no value and no default; give one with --parameter-values "
                f"{p.id.lstrip('*')}=... or mark it optional"
            )
            out.append(_perr(p, None, text) if activation else _pwarn(p, None, text))
    return out


def _declaration_problems(p: ParameterDef) -> list[Problem]:
    out: list[Problem] = []
    if not PARAMETER_ID.match(p.id):
        out.append(
            _pwarn(
                p,
                "id",
                f"parameter ids must start with 'my' (or '*my' when masked); found "
                f"'{p.id}' (the Developer Guide requires the prefix; tailrace accepts the id)",
            )
        )
    t = p.attr("type")
    if isinstance(t, tuple):
        out.append(_perr(p, "type", f"expected one type; found {len(t)}"))
    elif isinstance(t, str) and t not in PARAMETER_TYPES:
        if any(k.lower() == t.strip().lower() for k in PARAMETER_TYPES):
            out.append(_pwarn(p, "type", f"expected '{param_type(p)}'; found '{t}' (accepted)"))
        else:
            out.append(
                _perr(
                    p,
                    "type",
                    f"expected one of {', '.join(PARAMETER_TYPES)}; found '{t}'"
                    + suggest(t, PARAMETER_TYPES),
                )
            )
    for key in p.attributes:
        if key not in KNOWN_ATTRIBUTES and not re.match(r"^my[A-Z_]", key):
            out.append(
                _pwarn(
                    p,
                    key,
                    f"unknown parameter attribute '{key}' (ignored); expected one of "
                    f"{', '.join(KNOWN_ATTRIBUTES)}" + suggest(key, KNOWN_ATTRIBUTES),
                )
            )
    for flag in ("optional", "isArray"):
        value = p.attr(flag)
        if value is not None and (
            not isinstance(value, str) or value.strip().lower() not in ("true", "false")
        ):
            out.append(_perr(p, flag, f"expected 'true' or 'false'; found {value!r}"))
    ptype = param_type(p)
    allowed = p.attr("allowedValues")
    for item in _as_tuple(allowed) if allowed is not None else ():
        why = type_problem(ptype, item)
        if why:
            out.append(_perr(p, "allowedValues", why))
    default = p.attr("default")
    if default is not None:
        out.extend(_value_problems(p, _as_tuple(default), "default"))
    return out


def _value_problems(p: ParameterDef, items: tuple[str, ...], what: str) -> list[Problem]:
    out: list[Problem] = []
    field_name = "default" if what == "default" else None
    positioned = what == "default"  # values come from elsewhere (values, --parameter-values)
    if len(items) > 1 and not is_array(p):
        out.append(
            _perr(
                p,
                field_name,
                f"parameter '{p.id}' takes one {what}; found {len(items)} "
                '(declare it with "isArray": "true" to take several)',
                positioned=positioned,
            )
        )
    ptype = param_type(p)
    allowed = p.attr("allowedValues")
    allowed_items = _as_tuple(allowed) if allowed is not None else ()
    for item in items:
        why = type_problem(ptype, item)
        if why:
            out.append(_perr(p, field_name, f"{what} of '{p.id}': {why}", positioned=positioned))
        elif allowed_items and item not in allowed_items:
            out.append(
                _perr(
                    p,
                    field_name,
                    f"{what} of '{p.id}': expected one of the allowedValues "
                    f"{', '.join(repr(a) for a in allowed_items)}; found '{item}'"
                    + suggest(item, allowed_items),
                    positioned=positioned,
                )
            )
    return out
