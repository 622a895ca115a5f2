"""CloudWatch's two binary-era protocols: AWS JSON 1.0 (`POST /` with `X-Amz-Target:
GraniteServiceVersion20100801.<Op>`, what current boto3 sends) and Smithy RPC v2 CBOR
(`POST /service/GraniteServiceVersion20100801/operation/<Op>`). Errors carry `__type` and,
because the model is `awsQueryCompatible`, the Query error code in `x-amzn-query-error`
(botocore raises by that)."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cbor2
import orjson
from anyio.to_thread import run_sync
from botocore.model import Shape
from starlette.requests import Request
from starlette.responses import Response

from tailrace.api import query
from tailrace.api.auth import Authenticator
from tailrace.api.cloudwatch import ACTIONS, CloudWatchApi
from tailrace.api.jsonproto import read_body, request_parts
from tailrace.api.queryapp import QueryEndpoint, _region, _scope

PATH = "/service/GraniteServiceVersion20100801/operation/{operation}"
TARGET_PREFIX = "GraniteServiceVersion20100801."
JSON_TYPE = "application/x-amz-json-1.0"
MAX_BODY = 2 * 1024 * 1024
HEADERS = {"smithy-protocol": "rpc-v2-cbor"}


def _fail(message: str) -> query.QueryError:
    return query.error_for("cloudwatch", "InvalidParameterValue", message)


def _read(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            raise _fail(f"{path or 'the body'} must be a map")
        out = {}
        for name, member in shape.members.items():
            if value.get(name) is not None:
                out[name] = _read(member, value[name], f"{path}.{name}" if path else name)
        for name in shape.required_members:
            if name not in out:
                raise query.error_for("cloudwatch", "MissingParameter", f"The parameter {name} is required.")
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise _fail(f"{path} must be a list")
        return [_read(shape.member, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise _fail(f"{path} must be a map")
        return {str(k): _read(shape.value, v, f"{path}.{k}") for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return datetime.fromtimestamp(value, UTC)
        raise _fail(f"{path} must be a timestamp")
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(f"{path} must be a number")
        return float(value)
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"{path} must be an integer")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(f"{path} must be true or false")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise _fail(f"{path} must be a string")
        enum = shape.enum
        if enum and value not in enum:
            raise _fail(f"{path}: {value!r} is not one of {', '.join(enum)}")
        return value
    return value


def _write(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _write(member, value[name])
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_write(shape.member, v) for v in value]
    if kind == "map":
        return {k: _write(shape.value, v) for k, v in value.items()}
    if kind in ("double", "float"):
        return float(value)
    return value


def _epochs(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _epochs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epochs(v) for v in value]
    return value


class CborEndpoint:
    """Both protocols; `json` picks AWS JSON 1.0 over CBOR."""

    def __init__(
        self,
        api: CloudWatchApi,
        authenticator: Authenticator,
        query_endpoint: QueryEndpoint,
        *,
        json: bool = False,
    ) -> None:
        self.api = api
        self.authenticator = authenticator
        self.errors = query_endpoint
        self.json = json

    def _encode(self, value: Any) -> bytes:
        if self.json:
            return orjson.dumps(_epochs(value))
        return cbor2.dumps(value, datetime_as_timestamp=True, timezone=UTC)

    def _decode(self, body: bytes) -> Any:
        if self.json:
            return orjson.loads(body)
        return cbor2.loads(body)

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        media = JSON_TYPE if self.json else "application/cbor"
        extra = {} if self.json else HEADERS
        try:
            if self.json:
                operation = request.headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
            else:
                operation = request.path_params["operation"]
            if operation not in ACTIONS:
                raise query.QueryError(
                    "InvalidAction", f"The action {operation} is not valid for this web service."
                )
            # The signature's headers first: no body byte is read for an unsigned or unknown caller.
            pending = await run_sync(
                functools.partial(
                    self.authenticator.begin, request_parts(request, b""), service=self.api.signing_name
                )
            )
            body = await read_body(request, MAX_BODY)
            parts = request_parts(request, body)
            call = functools.partial(self._handle, operation, parts, pending)
            result = await run_sync(call)
            return Response(
                self._encode(result), media_type=media, headers={**extra, "x-amzn-RequestId": request_id}
            )
        except Exception as exc:
            err = self.errors._as_query_error(exc)
            kind = "Sender" if err.sender else "Receiver"
            return Response(
                self._encode(
                    {"__type": f"com.amazonaws.cloudwatch#{err.query_code}", "message": err.message}
                ),
                status_code=err.query_status,
                media_type=media,
                headers={
                    **extra,
                    "x-amzn-RequestId": request_id,
                    "x-amzn-query-error": f"{err.query_code};{kind}",
                },
            )

    def _handle(self, operation: str, parts: Any, pending: Any) -> Any:
        caller = pending.finish(parts.body)
        model = query.service_model("cloudwatch").operation_model(operation)
        try:
            raw = self._decode(parts.body) if parts.body.strip() else {}
        except (cbor2.CBORDecodeError, ValueError) as exc:
            what = "JSON" if self.json else "CBOR"
            raise query.QueryError("SerializationException", f"the request body is not {what}: {exc}")
        params = _read(model.input_shape, raw, "") if model.input_shape is not None else {}
        region = _region({k.lower(): v for k, v in parts.headers})
        result = self.api.handle(operation, _scope(caller.owner, region), params, "")
        if model.output_shape is None:
            return {}
        return _write(model.output_shape, result or {})
