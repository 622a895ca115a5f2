"""The AWS JSON 1.1 endpoint: `POST /` with `X-Amz-Target: DataPipeline.<Operation>`.

Per request: route by target, check the signature's headers (no body byte is read for an
unsigned or unknown caller), read the body up to the operation's cap, then in a worker thread
check the signature over it, parse, check against the model's input shape, run the operation
and shape the output. Every failure becomes `{"__type", "message"}` with its status (errors.py
decides which).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import anyio
import orjson
from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tailrace.api import shapes
from tailrace.api.auth import Authenticator, Caller, PendingCaller, RequestParts
from tailrace.api.bodies import receive_all
from tailrace.api.errors import (
    AwsError,
    PayloadTooLarge,
    SerializationError,
    UnknownOperation,
    to_aws_error,
)
from tailrace.api.loopreads import LoopReadFailed, LoopReads
from tailrace.runtime.errors import InvalidRequest

log = logging.getLogger(__name__)

TARGET_PREFIX = "DataPipeline."
CONTENT_TYPE = "application/x-amz-json-1.1"
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()
KIB = 1024
MAX_BODY = 16 * 1024 * KIB
"""The largest body any operation takes (a pipeline definition)."""
DEFAULT_BODY = 128 * KIB
"""Every other operation: ids, a page marker, a few fields (AWS documents no request size; its
per-field limit is 10,240 bytes and DescribeObjects takes at most 25 ids)."""
BODY_LIMITS: dict[str, int] = {
    # 100 objects of 15,360 bytes each is AWS's default definition limit; the cap leaves room for
    # raised object limits, parameters and JSON overhead.
    "PutPipelineDefinition": MAX_BODY,
    "ValidatePipelineDefinition": MAX_BODY,
    "SetTaskStatus": 1024 * KIB,  # an error stack trace
    "ReportTaskProgress": 1024 * KIB,
}
LONG_POLL = frozenset({"PollForTask"})
BULK_READS = frozenset({"DescribeObjects", "QueryObjects"})
"""Pages of up to hundreds of objects, pure CPU in this process: they run one at a time. The
interpreter lock lets only one run anyway; interleaved, they cost a fifth more in lock handoffs
(measured with `tailrace list-runs`, which keeps two in flight)."""
REST_NOT_FOUND = frozenset(
    {"PipelineNotFoundException", "PipelineDeletedException", "ResourceNotFoundException"}
)

Dispatch = Callable[[str, Caller, dict[str, Any]], Mapping[str, Any] | None]
"""(operation, caller, checked input) -> output members; raises domain or AWS errors."""


def json_response(
    body: Any, *, status: int = 200, request_id: str, content_type: str = CONTENT_TYPE
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=content_type,
        headers={"x-amzn-RequestId": request_id},
    )


def error_response(
    exc: BaseException, *, request_id: str, content_type: str = CONTENT_TYPE, rest: bool = False
) -> Response:
    err: AwsError = to_aws_error(exc)
    status = err.status
    if rest and err.code in REST_NOT_FOUND:
        status = 404  # the AWS API answers 400 for these; a REST client expects 404
    return json_response(err.body(), status=status, request_id=request_id, content_type=content_type)


def body_limit(operation: str) -> int:
    return BODY_LIMITS.get(operation, DEFAULT_BODY)


async def read_body(request: Request, limit: int = DEFAULT_BODY, *, what: str = "this request") -> bytes:
    """The body, refused (413) as soon as it passes `limit`: by its Content-Length before any
    byte is read, or while streaming when it has none."""
    _check_declared(request.headers.get("content-length"), limit, what)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes for {what}")
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_body(scope: Scope, receive: Receive, limit: int, *, what: str) -> bytes:
    """`read_body` on the raw ASGI scope and receive channel (no Request object)."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    _check_declared(declared.decode("latin-1") if declared is not None else None, limit, what)
    return await receive_all(
        receive,
        limit,
        lambda: PayloadTooLarge(f"request body is larger than the limit of {limit} bytes for {what}"),
    )


def _check_declared(declared: str | None, limit: int, what: str) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes is larger than the limit of {limit} bytes for {what}"
        )


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of a header (`name` in lower case; ASGI servers give names in lower case)."""
    return next((v for k, v in headers if k == name), None)


def request_parts(request: Request, body: bytes) -> RequestParts:
    return scope_parts(request.scope, body)


def scope_parts(scope: Scope, body: bytes = b"") -> RequestParts:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    path = path.split("?", 1)[0]
    return RequestParts(
        method=scope["method"],
        raw_path=path,
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
    )


def parse_json_body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        raise SerializationError(f"request body must be a JSON object, not {type(data).__name__}")
    if b"\\u0000" in body:
        _refuse_nul(data, "")
    return data


def _refuse_nul(value: Any, where: str) -> None:
    """No id, name or field value holds a NUL (PostgreSQL text cannot; nothing needs one)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidRequest(
                f"1 validation error detected: value at '{where or 'body'}' contains a NUL character"
            )
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_nul(k, where)
            _refuse_nul(v, f"{where}.{k}" if where else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_nul(v, f"{where}[{i}]")


class JsonProtocolEndpoint:
    """An ASGI app serving the JSON 1.1 protocol for one service model."""

    def __init__(
        self,
        dispatch: Dispatch,
        authenticator: Authenticator,
        *,
        poll_threads: int = 16,
        api_threads: int = 32,
        loop_reads: LoopReads | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.loop_reads = loop_reads
        """The operations it takes run on the event loop when their caller's key is cached."""
        self.authenticator = authenticator
        self._poll_threads = poll_threads
        self._api_threads = api_threads
        self._limiters: dict[str, anyio.CapacityLimiter] | None = None

    def _limiter(self, operation: str) -> anyio.CapacityLimiter:
        # Created lazily inside the event loop. Long polls get their own pool so that waiting task
        # runners can never take every thread from the rest of the API.
        if self._limiters is None:
            self._limiters = {
                "api": anyio.CapacityLimiter(self._api_threads),
                "poll": anyio.CapacityLimiter(self._poll_threads),
                "bulk": anyio.CapacityLimiter(1),
            }
        if operation == "auth":
            return self._limiters["api"]
        if operation in LONG_POLL:
            return self._limiters["poll"]
        return self._limiters["bulk" if operation in BULK_READS else "api"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The API's busiest path: the scope is read directly (headers decoded once) and the
        # answer sent as two ASGI messages, without Starlette's Request and Response objects.
        request_id = str(uuid.uuid4())
        try:
            method = scope["method"]
            if method != "POST":
                raise UnknownOperation(
                    f"the AWS API takes POST requests with X-Amz-Target: {TARGET_PREFIX}<Operation>, "
                    f"not {method}"
                )
            head = scope_parts(scope)
            operation = self.operation_of(_header(head.headers, "x-amz-target"))
            # A cached key is checked here; a lookup may touch the database: off the event loop,
            # in the API's pool (a thread hop costs about as much as the signature check).
            pending = self.authenticator.begin_cached(head)
            if pending is None:
                pending = await run_sync(self.authenticator.begin, head, limiter=self._limiter("auth"))
            body = await receive_body(scope, receive, body_limit(operation), what=operation)
            parts = replace(head, body=body)
            result = None
            if self.loop_reads is not None and self.loop_reads.takes(operation):
                result = self._on_loop(self.loop_reads, operation, parts, pending)
            if result is None:
                call = functools.partial(self.handle, operation, parts, pending)
                result = await run_sync(call, limiter=self._limiter(operation))
            payload, status = orjson.dumps(result), 200
        except Exception as exc:
            err = to_aws_error(exc)
            payload, status = orjson.dumps(err.body()), err.status
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", _CONTENT_TYPE_BYTES),
                    (b"x-amzn-requestid", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    def _on_loop(
        loop_reads: LoopReads, operation: str, parts: RequestParts, pending: PendingCaller
    ) -> dict[str, Any] | None:
        """`handle` on the event loop, with no read but on the loop's own connection: None
        (run it in the pool) when the key left the cache or that connection failed."""
        caller = pending.finish_cached(parts.body)
        if caller is None:
            return None
        params = shapes.check_input(operation, parse_json_body(parts.body))
        try:
            result = loop_reads.dispatch(operation, caller, params)
        except LoopReadFailed:
            return None
        return shapes.render_output(operation, result)

    @staticmethod
    def operation_of(target: str | None) -> str:
        if not target:
            raise UnknownOperation(f"missing X-Amz-Target header; expected {TARGET_PREFIX}<Operation>")
        prefix, _, name = target.partition(".")
        if f"{prefix}." != TARGET_PREFIX or name not in shapes.operation_names():
            from tailrace.errors import did_you_mean

            hint = did_you_mean(name or target, shapes.operation_names())
            raise UnknownOperation(
                f"unknown operation {target!r}; expected {TARGET_PREFIX}<Operation>.{hint}"
            )
        return name

    def handle(
        self, operation: str, parts: RequestParts, pending: PendingCaller | None = None
    ) -> dict[str, Any]:
        """Authenticate, check, run and shape one call (runs in a worker thread)."""
        if pending is None:
            pending = self.authenticator.begin(parts)
        caller = pending.finish(parts.body)
        params = shapes.check_input(operation, parse_json_body(parts.body))
        result = self.dispatch(operation, caller, params)
        return shapes.render_output(operation, result)
