"""HTTP/1.1 on one kept socket: answers parsed by httptools (llhttp, the parser uvicorn uses).

The API client and notify's HTTP deliveries send many small requests to one destination.
http.client parses every answer's headers with the email package, which cost as much as the
rest of a request (signing included); h11, pure Python, still doubled the client's CPU per call
(bench/api_bench.py: 0.3 -> 0.6 ms). This module adds what the parser leaves to its caller: the
socket, TLS, a request head checked before it is sent, one deadline for the whole answer, bounds
on the head and the body, and knowing when a kept connection may be used again.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httptools

MAX_HEAD = 64 * 1024
"""Bytes of status line and headers accepted before the answer is refused."""

_TARGET = re.compile(r"[!-~]+")  # visible ASCII: no space, no control character
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's token
_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")  # any but controls (tab allowed)


class RequestError(ValueError):
    """The request cannot be sent as given (a control character in the target or a header)."""


class ResponseError(Exception):
    """The peer's answer broke HTTP/1.1, or its head was larger than MAX_HEAD."""


class StaleConnection(Exception):
    """A kept connection was closed by the peer before any of the answer arrived: the request
    may be sent again on a new connection."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    """Names in lower case, in the order received."""
    body: bytes
    complete: bool
    """False when the body was longer than the caller's bound and was left unread."""


class _Answer:
    """httptools' callbacks for one answer (interim 1xx answers are skipped)."""

    def __init__(self, max_body: int | None, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.max_body, self.head_only = max_body, head_only
        self.status, self.size = 0, 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.head_done = self.done = self.overrun = self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status, self.head_done = self.parser.get_status_code(), True
        if self.status >= 200 and (
            self.head_only or (self.max_body is not None and self.declared() > self.max_body)
        ):
            self.overrun = not self.head_only  # a body over the bound is not waited for
            self.done = self.head_only

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.max_body is not None and self.size > self.max_body:
            self.overrun = True
        elif not self.overrun:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:  # interim: the final answer follows on the same connection
            self.status, self.headers, self.head_done = 0, [], False
        else:  # read keep-alive now: the parser forgets it once the next message begins
            self.done, self.keep_alive = True, self.parser.should_keep_alive()

    def declared(self) -> int:
        return next((int(v) for n, v in self.headers if n == b"content-length" and v.isdigit()), 0)

    def ends_at_close(self) -> bool:
        """No length and no chunking: the body is whatever arrives until the peer closes."""
        names = {n for n, _ in self.headers}
        return self.head_done and b"content-length" not in names and b"transfer-encoding" not in names


class Connection:
    """One HTTP/1.1 connection to `address`:`port`; `host` names it in the Host header and, with
    `tls`, for the certificate check. Not thread-safe: one request at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        address: str | None = None,
        timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.address = host, port, address or host
        self.timeout, self.tls = timeout, tls
        self.sock: socket.socket | None = None
        self.reusable = False
        """True when the last answer was read whole and neither side asked to close."""
        default = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host
        if not name.isascii():
            name = name.encode("idna").decode("ascii")
        self.host_header = name if port == default else f"{name}:{port}"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.reusable = None, False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        return sock

    def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes = b"",
        *,
        max_body: int | None = None,
    ) -> Response:
        """Send one request and read its answer, all of it within `timeout` seconds. A body
        longer than `max_body` is not read (the connection is then not reused).

        :raises RequestError: before connecting, for a request that cannot be sent as given;
            StaleConnection: a kept connection the peer had closed; OSError (TimeoutError
            included), ResponseError: otherwise. After any of these three it is closed."""
        head, closes = _head(method, target, headers, self.host_header, len(body))
        kept = self.sock is not None and self.reusable
        if not kept:
            self.close()
            self.sock = self._connect()
        assert self.sock is not None
        self.reusable = False
        try:
            answer = self._exchange(self.sock, kept, head + body, _Answer(max_body, method == "HEAD"))
        except BaseException:
            self.close()
            raise
        complete = answer.done and not answer.overrun
        self.reusable = complete and method != "HEAD" and not closes and answer.keep_alive
        if not self.reusable:
            self.close()
        return Response(answer.status, answer.headers, b"".join(answer.chunks), complete)

    def _exchange(self, sock: socket.socket, kept: bool, wire: bytes, answer: _Answer) -> _Answer:
        deadline = time.monotonic() + self.timeout  # for the whole answer, not each read
        try:
            sock.settimeout(self.timeout)
            sock.sendall(wire)
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            if kept:
                raise StaleConnection() from None
            raise
        got = head_bytes = 0
        while not (answer.done or answer.overrun):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete answer in time")
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                if kept and not got:
                    raise StaleConnection() from None
                raise
            if not data:
                if kept and not got:
                    raise StaleConnection()
                if answer.ends_at_close():
                    answer.done = True
                    break
                raise ResponseError("connection closed before the answer was complete")
            got += len(data)
            if not answer.head_done:
                head_bytes += len(data)
                if head_bytes > MAX_HEAD + 65536:
                    raise ResponseError("answer head too large")
            try:
                answer.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise ResponseError(f"invalid HTTP answer: {exc}") from None
            if not answer.head_done and head_bytes > MAX_HEAD:
                raise ResponseError("answer head too large")
        return answer


def _head(
    method: str, target: str, headers: Iterable[tuple[str, str]], host: str, length: int
) -> tuple[bytes, bool]:
    """The request's head, checked: (bytes, whether it asks to close the connection)."""
    if not _NAME.fullmatch(method) or not _TARGET.fullmatch(target):
        raise RequestError(
            f"cannot send {method} {target!r}: a space or control character in the request line"
        )
    lines = [f"{method} {target} HTTP/1.1"]
    has_host, closes = False, False
    for name, value in headers:
        if not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            raise RequestError(f"cannot send header {name!r}: {value!r}")
        lower = name.lower()
        if lower == "content-length":
            continue  # from the body, below
        has_host = has_host or lower == "host"
        closes = closes or (lower == "connection" and "close" in value.lower())
        lines.append(f"{name}: {value}")
    if not has_host:
        lines.insert(1, f"Host: {host}")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1"), closes
