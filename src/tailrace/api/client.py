"""A small AWS JSON 1.1 client for tailrace's own commands: SigV4-signed POSTs over keep-alive
connections (one per thread), JSON in and out. boto3 works against the same endpoint; this one
starts faster and skips botocore's response parsing, which dominates bulk reads like list-runs.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from tailrace.api import sigv4
from tailrace.errors import TailraceError

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

    def _connection(self) -> http.client.HTTPConnection | Http11:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
            else:
                conn = Http11(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
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
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                if isinstance(conn, Http11):
                    return conn.request(method, target, headers, body)
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                stale = reused and isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                )
                if attempt == 1 and stale:
                    continue  # the server closed an idle kept-alive connection: resend on a new one
                raise EndpointUnreachable(
                    f"cannot reach tailrace at {self.endpoint} ({exc.__class__.__name__}: {exc}); "
                    "is `tailrace up` running there? (set --endpoint-url or TAILRACE_ENDPOINT)"
                )
        raise AssertionError("unreachable")


class Http11:
    """One keep-alive HTTP/1.1 connection, plain text: what `_send` needs of http.client at a
    fraction of its CPU (http.client parses every response's headers with the email package,
    about as much work per call as the server's signature check). HTTPS uses http.client."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self._buf = b""

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Send one request and read its whole answer: (status, body)."""
        if _UNSAFE.search(target):
            raise http.client.InvalidURL(f"URL can't contain control characters: {target!r}")
        lines = [f"{method} {target} HTTP/1.1"]
        for name, value in headers.items():
            if _UNSAFE_VALUE.search(name) or _UNSAFE_VALUE.search(value):
                raise ValueError(f"invalid header {name!r}: {value!r}")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buf = b""
        self.sock.sendall("\r\n".join(lines).encode("latin-1") + body)
        status, fields = self._head()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            payload = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            payload = self._chunked()
        elif "content-length" in fields:
            payload = self._exactly(int(fields["content-length"]))
        else:
            payload = self._until_closed()
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, payload

    def _recv(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        return data

    def _head(self) -> tuple[int, dict[str, str]]:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > 65536:
                raise http.client.LineTooLong("response headers")
            self._buf += self._recv()
        head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4 :]
        status_line, *rest = head.split("\r\n")
        version, _, code = status_line.partition(" ")
        if not version.startswith("HTTP/1.") or not code[:3].isdigit():
            raise http.client.BadStatusLine(status_line)
        fields: dict[str, str] = {}
        for line in rest:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return int(code[:3]), fields

    def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._recv()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            self._buf += self._recv()
        line, self._buf = self._buf[:end], self._buf[end + 2 :]
        return line

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._exactly(size))
            self._exactly(2)  # the CRLF after each chunk

    def _until_closed(self) -> bytes:
        assert self.sock is not None
        parts = [self._buf]
        while data := self.sock.recv(65536):
            parts.append(data)
        self.close()
        return b"".join(parts)


_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")
