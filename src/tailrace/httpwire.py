"""HTTP/1.1 on one kept socket, with h11 doing the protocol.

The API client and notify's HTTP deliveries send many small requests to one destination.
http.client parses every answer's headers with the email package, which cost as much as the
rest of a request (signing included); h11 parses them in a fraction of that. This module adds
what h11 leaves to its caller: the socket, TLS, one deadline for the whole answer, bounds on the
head and the body, and knowing when a kept connection may be used again.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass

import h11

MAX_HEAD = 64 * 1024
"""Bytes of status line and headers accepted before the answer is refused."""


class ResponseError(Exception):
    """The peer's answer broke HTTP/1.1, or its head was larger than MAX_HEAD."""


class StaleConnection(Exception):
    """A kept connection was closed by the peer before any of the answer arrived: the request
    may be sent again on a new connection."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool
    """False when the body was longer than the caller's bound and was left unread."""


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
        self._h11: h11.Connection | None = None
        default = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host
        if not name.isascii():
            name = name.encode("idna").decode("ascii")
        self.host_header = name if port == default else f"{name}:{port}"

    @property
    def reusable(self) -> bool:
        """True when the last answer was read whole and neither side asked to close."""
        return self.sock is not None and self._h11 is not None and self._h11.our_state is h11.IDLE

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self._h11 = None, None

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

        :raises StaleConnection: a kept connection the peer had closed; OSError (TimeoutError
            included), ResponseError: otherwise. After any of them the connection is closed."""
        kept = self.reusable
        if not kept:
            self.close()
            self.sock, self._h11 = (
                self._connect(),
                h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD),
            )
        assert self.sock is not None and self._h11 is not None
        try:
            return self._exchange(self.sock, self._h11, kept, method, target, headers, body, max_body)
        except BaseException:
            self.close()
            raise

    def _exchange(
        self,
        sock: socket.socket,
        conn: h11.Connection,
        kept: bool,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        max_body: int | None,
    ) -> Response:
        fields = [("Host", self.host_header), *headers, ("Content-Length", str(len(body)))]
        try:
            wire = conn.send(h11.Request(method=method, target=target, headers=fields))
            if body:
                wire += conn.send(h11.Data(data=body))
            wire += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ResponseError(f"request not sendable: {exc}") from None
        deadline = time.monotonic() + self.timeout  # for the whole answer, not each read
        try:
            sock.settimeout(self.timeout)
            sock.sendall(wire)
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            if kept:
                raise StaleConnection() from None
            raise
        status, got, chunks, size = 0, False, [], 0
        response_headers: list[tuple[bytes, bytes]] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ResponseError(f"invalid HTTP answer: {exc}") from None
            if event is h11.NEED_DATA:
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
                if not data and kept and not got:
                    raise StaleConnection()
                got = got or bool(data)
                conn.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                continue  # 1xx: the final answer follows
            elif isinstance(event, h11.Response):
                status, response_headers = event.status_code, list(event.headers)
                if max_body is not None and _declared_length(response_headers) > max_body:
                    return Response(status, response_headers, b"", complete=False)  # not waited for
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if max_body is not None and size > max_body:
                    return Response(status, response_headers, b"".join(chunks), complete=False)
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ResponseError("connection closed before the answer was complete")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()  # both sides keep the connection: reusable
        return Response(status, response_headers, b"".join(chunks), complete=True)


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The Content-Length h11 accepted (it refuses malformed and conflicting ones), else 0."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return 0
