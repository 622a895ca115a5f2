"""Sending one HTTP/S delivery to an untrusted endpoint: no redirects, bounded time and size, and
only to addresses the destination policy allows (checked on the resolved address, which is the
one connected to, so a name cannot re-resolve to an internal address between check and use)."""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tailrace.httpwire import MAX_HEAD, Connection, ResponseError, StaleConnection
from tailrace.notify.errors import InvalidParameter

__all__ = ["MAX_HEAD", "DeliveryRefused", "DestinationPolicy", "KeepAlive", "Outcome", "post"]

TIMEOUT = 15.0
"""Seconds for connecting and for each read (SNS waits about as long)."""
MAX_RESPONSE = 64 * 1024


class DeliveryRefused(InvalidParameter):
    """The endpoint is not a destination this service may send to."""


@dataclass(frozen=True, kw_only=True)
class DestinationPolicy:
    """Where deliveries may go. Public addresses always; loopback, private, link-local and other
    special ranges only when `allow_private()` says so or they are in `allowed_networks`."""

    allowed_networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    allow_private: Callable[[], bool] = field(default=lambda: False)

    @classmethod
    def from_text(
        cls, networks: str | None, allow_private: Callable[[], bool] | bool = False
    ) -> DestinationPolicy:
        nets = []
        for part in (networks or "").split(","):
            if part.strip():
                try:
                    nets.append(ipaddress.ip_network(part.strip(), strict=False))
                except ValueError as exc:
                    from tailrace.errors import ConfigError

                    raise ConfigError(f"notify_allowed_networks: {part.strip()!r} is not a network ({exc})")
        fn = allow_private if callable(allow_private) else (lambda: bool(allow_private))
        return cls(allowed_networks=tuple(nets), allow_private=fn)

    def allows(self, address: str) -> bool:
        ip, kind = _classify(address)
        if self.allowed_networks and any(ip in net for net in self.allowed_networks):
            return True
        if kind != "private":
            return kind == "public"
        return self.allow_private()

    def resolve(self, host: str, port: int) -> str:
        """The first allowed address of host. :raises DeliveryRefused:"""
        if _is_address(host):  # an address already: nothing to look up
            if self.allows(host):
                return host
            infos = []
        else:
            infos = self._lookup(host, port)
        for info in infos:
            address = str(info[4][0])
            if self.allows(address):
                return address
        raise DeliveryRefused(
            f"Endpoint host {host!r} resolves only to addresses this service does not deliver to "
            "(loopback, private or reserved ranges; see notify_allowed_networks)"
        )

    @staticmethod
    def _lookup(host: str, port: int) -> list[Any]:
        try:
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DeliveryRefused(f"Endpoint host {host!r} does not resolve ({exc.strerror})")

    def check_endpoint(self, protocol: str, endpoint: str) -> None:
        """For Subscribe: the URL is well formed and its host is allowed now."""
        if protocol not in ("http", "https"):
            return
        host, port, _ = split_url(endpoint)
        self.resolve(host, port)


@functools.lru_cache(maxsize=4096)
def _classify(address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str]:
    """(address, "public" | "refused" | "private"): what the rules above need to know of it,
    worked out once per address (ipaddress's range checks cost more than a delivery's send)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_global and not ip.is_multicast:
        return ip, "public"
    if ip.is_unspecified or ip.is_multicast:
        return ip, "refused"
    return ip, "private"


def _is_address(host: str) -> bool:
    try:
        _classify(host)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path and query) of an endpoint URL (once per URL: it is split per delivery)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(f"Endpoint: {url[:200]!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidParameter("Endpoint: credentials in the URL are not accepted")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidParameter(f"Endpoint: {url[:200]!r} has an invalid port")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, port, path


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    delivered: bool
    retry: bool
    detail: str


def _request_target(path: str) -> str:
    """The path as sent in the request line. :raises InvalidParameter: for characters a request
    line cannot carry (a URL's own must be percent-encoded)."""
    if not path.isascii() or any(c <= " " or c == "\x7f" for c in path):
        raise InvalidParameter("Endpoint: the URL's path has characters a request line cannot carry")
    return path


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: DestinationPolicy,
    *,
    timeout: float = TIMEOUT,
    tls: ssl.SSLContext | None = None,
) -> Outcome:
    """POST once on a connection of its own. 2xx is delivered; 5xx, 429, timeouts and connection
    failures are retried; any other status (redirects included: they are never followed) fails
    without retry."""
    try:
        host, port, path = split_url(url)
        target = _request_target(path)
        address = policy.resolve(host, port)
    except InvalidParameter as exc:
        return Outcome(delivered=False, retry=False, detail=exc.message)
    context = (tls or ssl.create_default_context()) if url.lower().startswith("https://") else None
    conn = Connection(host, port, address=address, timeout=timeout, tls=context)
    try:
        status = _post(conn, target, body, {**headers, "Connection": "close"})
    except (OSError, ResponseError, StaleConnection) as exc:
        return Outcome(delivered=False, retry=True, detail=f"{type(exc).__name__}: {exc}"[:300])
    finally:
        conn.close()
    return _status_outcome(status)


class KeepAlive:
    """`post` with connections kept open between deliveries to the same destination (host, port
    and the address checked for it), as SNS keeps them: no connect and no new server thread per
    message. A kept connection the subscriber has closed meanwhile is replaced once, at once;
    connections idle longer than `idle` seconds are not reused (servers drop them at about 5 s)."""

    def __init__(
        self, *, idle: float = 4.0, per_destination: int = 8, tls: ssl.SSLContext | None = None
    ) -> None:
        self.idle = idle
        self.per_destination = per_destination
        self.tls = tls
        self._kept: dict[tuple[str, str, int, str], list[tuple[Connection, float]]] = {}
        self._lock = threading.Lock()

    def _take(self, key: tuple[str, str, int, str]) -> Connection | None:
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key) or []
            while kept:
                conn, since = kept.pop()
                if now - since < self.idle:
                    return conn
                conn.close()
        return None

    def _give(self, key: tuple[str, str, int, str], conn: Connection) -> None:
        with self._lock:
            kept = self._kept.setdefault(key, [])
            if len(kept) < self.per_destination:
                kept.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, {}
        for conns in kept.values():
            for conn, _ in conns:
                conn.close()

    def __call__(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        policy: DestinationPolicy,
        *,
        timeout: float = TIMEOUT,
    ) -> Outcome:
        try:
            host, port, path = split_url(url)
            target = _request_target(path)
            address = policy.resolve(host, port)
        except InvalidParameter as exc:
            return Outcome(delivered=False, retry=False, detail=exc.message)
        tls = url.lower().startswith("https://")
        key = ("https" if tls else "http", host, port, address)
        for attempt in range(2):
            # After a stale one, a new connection: the others kept for it were likely closed too.
            conn = self._take(key) if attempt == 0 else None
            if conn is None:
                context = (self.tls or ssl.create_default_context()) if tls else None
                conn = Connection(host, port, address=address, timeout=timeout, tls=context)
            try:
                status = _post(conn, target, body, headers)
            except StaleConnection:
                conn.close()
                continue  # the subscriber closed a kept connection: once more on a new one
            except (OSError, ResponseError) as exc:
                conn.close()
                return Outcome(delivered=False, retry=True, detail=f"{type(exc).__name__}: {exc}"[:300])
            if conn.reusable:
                self._give(key, conn)
            else:
                conn.close()  # the server closes, or more answer than we read
            return _status_outcome(status)
        return Outcome(delivered=False, retry=True, detail="connection closed by the subscriber")


def _post(conn: Connection, target: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and return the status; a delivery needs no more of the answer than a bounded body
    read to its end (so the connection can serve the next one)."""
    fields = [("Accept-Encoding", "identity"), *headers.items()]
    return conn.request("POST", target, fields, body, max_body=MAX_RESPONSE).status


def _status_outcome(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome(delivered=True, retry=False, detail=f"HTTP {status}")
    if status >= 500 or status == 429:
        return Outcome(delivered=False, retry=True, detail=f"HTTP {status}")
    return Outcome(delivered=False, retry=False, detail=f"HTTP {status} (not retried)")
