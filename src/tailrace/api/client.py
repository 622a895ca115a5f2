"""A small AWS JSON 1.1 client for tailrace's own commands: SigV4-signed POSTs over keep-alive
connections (one per thread, tailrace.httpwire), JSON in and out. boto3 works against the same endpoint; this one
starts faster and skips botocore's response parsing, which dominates bulk reads like list-runs.
"""

from __future__ import annotations

import ssl
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from tailrace.api import sigv4
from tailrace.errors import TailraceError
from tailrace.httpwire import Connection, RequestError, ResponseError, StaleConnection

SERVICE = "datapipeline"
REGION = "us-east-1"


class ApiCallError(TailraceError):
    """The server answered with an AWS error."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status


class EndpointUnreachable(TailraceError):
    pass


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()  # the JSON protocol's timestamps are epoch seconds
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class DataPipelineClient:
    def __init__(
        self, endpoint: str, access_key_id: str, secret_access_key: str, *, timeout: float = 120.0
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TailraceError(f"endpoint {endpoint!r} must be an http:// or https:// URL")
        self.endpoint = endpoint
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.netloc = parts.netloc
        self.path = parts.path or "/"
        self.access_key_id = access_key_id
        self.secret = secret_access_key
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            tls = ssl.create_default_context() if self.scheme == "https" else None
            conn = self._local.conn = Connection(self.host, self.port, timeout=self.timeout, tls=tls)
        return conn

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS Data Pipeline operation: its output members, or ApiCallError."""
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"DataPipeline.{operation}",
        }
        return self._json("POST", self.path, "", headers, orjson.dumps(params, default=_default))

    def rest(self, method: str, path: str, body: Any = None, *, query: str = "") -> dict[str, Any]:
        """A call to the REST API (`path` like /api/v1/pipelines/ID), signed the same way."""
        data = b"" if body is None else orjson.dumps(body, default=_default)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self._json(method, self.path.rstrip("/") + path, query, headers, data)

    def _json(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        headers = sigv4.sign(
            method=method,
            host=self.netloc,
            raw_path=path,
            raw_query=query,
            headers=headers,
            body=body,
            access_key_id=self.access_key_id,
            secret=self.secret,
            region=REGION,
            service=SERVICE,
            now=datetime.now(UTC),
        )
        target = path + (f"?{query}" if query else "")
        status, payload = self._send(method, target, body, headers)
        try:
            data = orjson.loads(payload) if payload.strip() else {}
        except orjson.JSONDecodeError:
            raise ApiCallError(
                "InvalidResponse", f"the server answered {status} with non-JSON: {payload[:200]!r}", status
            )
        if status >= 400:
            code = str(data.get("__type", "UnknownError")).rpartition("#")[2]
            raise ApiCallError(code, str(data.get("message", "")), status)
        return data

    def _send(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            try:
                answer = conn.request(method, target, headers.items(), body)
            except StaleConnection:  # the server closed an idle kept-alive connection
                answer = conn.request(method, target, headers.items(), body)  # resend on a new one
        except RequestError as exc:
            raise TailraceError(str(exc)) from None
        except (OSError, ResponseError) as exc:
            raise EndpointUnreachable(
                f"cannot reach tailrace at {self.endpoint} ({exc.__class__.__name__}: {exc}); "
                "is `tailrace up` running there? (set --endpoint-url or TAILRACE_ENDPOINT)"
            ) from None
        return answer.status, answer.body
