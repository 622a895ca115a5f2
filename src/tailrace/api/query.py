"""The AWS Query protocol (form-encoded `Action=...&Version=...`, XML responses), driven by the
installed botocore's own service models: SNS (2010-03-31) and CloudWatch (2010-08-01).

Parsing walks the operation's input shape to read the flattened form keys botocore writes
(`Attributes.entry.1.key`, `Tags.member.1.Key`, `MessageAttributes.entry.1.Value.DataType`);
rendering walks the output shape to write the XML botocore's QueryParser reads.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import OperationModel, ServiceModel, Shape

from tailrace.api.errors import AwsError


class QueryError(AwsError):
    """An error in Query form: `<ErrorResponse><Error><Type/><Code/><Message/>`."""

    def __init__(self, code: str, message: str, *, status: int = 400, sender: bool = True) -> None:
        super().__init__(message)
        self.query_code = code
        self.query_status = status
        self.sender = sender


@functools.cache
def service_model(name: str) -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


@functools.cache
def error_codes(service: str) -> dict[str, tuple[int, bool]]:
    """Error code -> (HTTP status, sender fault), from the model's exception shapes."""
    model = service_model(service)
    out: dict[str, tuple[int, bool]] = {}
    for name in model.shape_names:
        shape = model.shape_for(name)
        if shape.metadata.get("exception"):
            err = shape.metadata.get("error") or {}
            out[err.get("code", name)] = (int(err.get("httpStatusCode", 400)), bool(err.get("senderFault")))
    return out


def error_for(service: str, code: str, message: str) -> QueryError:
    status, sender = error_codes(service).get(code, (400, True))
    return QueryError(code, message, status=status, sender=sender)


# --- request ---------------------------------------------------------------------------------------


def parse_params(operation: OperationModel, form: Mapping[str, str], *, service: str) -> dict[str, Any]:
    """The operation's input as nested Python values.

    :raises QueryError: InvalidParameter naming a missing required member or a malformed value.
    """
    shape = operation.input_shape
    if shape is None:
        return {}
    return _Reader(form, service).structure(shape, "", top=True)


class _Reader:
    def __init__(self, form: Mapping[str, str], service: str) -> None:
        self.form = form
        self.service = service
        self.keys = list(form)

    def fail(self, message: str) -> QueryError:
        code = "InvalidParameter" if self.service == "sns" else "InvalidParameterValue"
        if self.service == "sns":
            return error_for("sns", code, f"Invalid parameter: {message}")
        return error_for(self.service, code, message)

    def present(self, prefix: str) -> bool:
        return prefix in self.form or any(k.startswith(prefix + ".") for k in self.keys)

    def read(self, shape: Shape, key: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, key)
        if kind == "list":
            return self.list(shape, key)
        if kind == "map":
            return self.map(shape, key)
        return self.scalar(shape, key)

    def structure(self, shape: Shape, prefix: str, *, top: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            key = wire if top else f"{prefix}.{wire}"
            if self.present(key):
                out[name] = self.read(member, key)
        for name in shape.required_members:
            if name not in out:
                where = name if top else f"{prefix}.{name}"
                raise self.fail(f"{where} is required")
        return out

    def list(self, shape: Shape, prefix: str) -> list[Any]:
        member = shape.member
        if shape.serialization.get("flattened"):
            base = prefix
        else:
            base = f"{prefix}.{member.serialization.get('name', 'member')}"
        if prefix in self.form and self.form[prefix] == "":
            return []  # botocore sends `Name=` for an empty list
        return [self.read(member, f"{base}.{i}") for i in self._indexes(base)]

    def map(self, shape: Shape, prefix: str) -> dict[str, Any]:
        key_shape, value_shape = shape.key, shape.value
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        kname = key_shape.serialization.get("name", "key")
        vname = value_shape.serialization.get("name", "value")
        out: dict[str, Any] = {}
        for i in self._indexes(base):
            entry = f"{base}.{i}"
            if f"{entry}.{kname}" not in self.form:
                raise self.fail(f"{entry}.{kname} is required")
            out[self.form[f"{entry}.{kname}"]] = self.read(value_shape, f"{entry}.{vname}")
        return out

    def _indexes(self, base: str) -> builtins.list[int]:
        found: set[int] = set()
        head = base + "."
        for k in self.keys:
            if k.startswith(head):
                n = k[len(head) :].split(".", 1)[0]
                if not n.isdigit() or int(n) < 1:
                    raise self.fail(f"{k}: list and map indexes are numbers from 1")
                found.add(int(n))
        if len(found) > 1000:
            raise self.fail(f"{base}: more than 1000 entries")
        return sorted(found)

    def scalar(self, shape: Shape, key: str) -> Any:
        if key not in self.form:
            raise self.fail(f"{key} needs a value")
        raw = self.form[key]
        kind = shape.type_name
        try:
            if kind == "string":
                enum = shape.enum
                if enum and raw not in enum:
                    raise self.fail(f"{key}: {raw!r} is not one of {', '.join(enum)}")
                return raw
            if kind == "boolean":
                if raw.lower() not in ("true", "false"):
                    raise self.fail(f"{key}: {raw!r} is not true or false")
                return raw.lower() == "true"
            if kind in ("integer", "long"):
                return int(raw)
            if kind in ("double", "float"):
                return float(raw)
            if kind == "timestamp":
                return parse_timestamp(raw)
            if kind == "blob":
                return base64.b64decode(raw, validate=True)
        except (ValueError, binascii.Error):
            raise self.fail(f"{key}: {raw[:60]!r} is not a valid {kind}")
        return raw


def parse_timestamp(raw: str) -> datetime:
    text = raw.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --- response --------------------------------------------------------------------------------------


def render_response(
    operation: OperationModel, result: Mapping[str, Any] | None, *, request_id: str, namespace: str
) -> bytes:
    name = operation.name
    parts = [f'<{name}Response xmlns="{namespace}">']
    shape = operation.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        parts.append(f"<{wrapper}>")
        _members(shape, result or {}, parts)
        parts.append(f"</{wrapper}>")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>")
    parts.append(f"</{name}Response>")
    return "".join(parts).encode("utf-8")


def _members(shape: Shape, value: Mapping[str, Any], parts: list[str]) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            continue
        _write(member, member.serialization.get("name", name), item, parts)


def _write(shape: Shape, tag: str, value: Any, parts: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        parts.append(f"<{tag}>")
        _members(shape, value, parts)
        parts.append(f"</{tag}>")
    elif kind == "list":
        member = shape.member
        if shape.serialization.get("flattened"):
            for item in value:
                _write(member, tag, item, parts)
        else:
            parts.append(f"<{tag}>")
            mtag = member.serialization.get("name", "member")
            for item in value:
                _write(member, mtag, item, parts)
            parts.append(f"</{tag}>")
    elif kind == "map":
        key_shape, value_shape = shape.key, shape.value
        kname = key_shape.serialization.get("name", "key")
        vname = value_shape.serialization.get("name", "value")
        parts.append(f"<{tag}>")
        for k, v in value.items():
            parts.append(f"<entry><{kname}>{escape(str(k))}</{kname}>")
            _write(value_shape, vname, v, parts)
            parts.append("</entry>")
        parts.append(f"</{tag}>")
    else:
        parts.append(f"<{tag}>{escape(_scalar(kind, value))}</{tag}>")


def _scalar(kind: str, value: Any) -> str:
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp" and isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def render_error(err: QueryError, *, request_id: str, namespace: str) -> bytes:
    kind = "Sender" if err.sender else "Receiver"
    return (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(err.query_code)}</Code><Message>{escape(err.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
