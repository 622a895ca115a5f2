"""The delivery's HTTP/1.1 client against raw endpoints that answer exactly as scripted: kept
connections reused only when the answer's end is known, interim 1xx answers skipped, a kept
connection the subscriber closed replaced once, and malformed, oversized or trickling answers
retried, never followed or waited on without bound."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest

from tailrace.notify.httpsend import MAX_HEAD, DestinationPolicy, KeepAlive, post

LOOPBACK = DestinationPolicy(allow_private=lambda: True)
HEADERS = {"x-amz-sns-message-type": "Notification", "Content-Type": "text/plain; charset=UTF-8"}

Reply = Callable[[socket.socket, int], bool]
"""(connection, request number on it) -> keep the connection open for another request."""


class RawEndpoint:
    """Accepts connections and answers each request with `reply`; records connections and the
    requests' bytes."""

    def __init__(self, reply: Reply, wrap: Callable[[socket.socket], socket.socket] | None = None) -> None:
        self.reply = reply
        self.wrap = wrap
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook?x=1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.wrap is not None:
            try:
                conn = self.wrap(conn)
            except OSError:  # e.g. the client refused the certificate
                conn.close()
                return
        with conn:
            data, n = b"", 0
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                data = rest[length:]
                if not self.reply(conn, n):
                    return
                n += 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def endpoint(request):
    made: list[RawEndpoint] = []

    def make(reply: Reply) -> RawEndpoint:
        made.append(RawEndpoint(reply))
        return made[-1]

    yield make
    for e in made:
        e.close()


def answer(raw: bytes, keep: bool = True) -> Reply:
    def reply(conn: socket.socket, n: int) -> bool:
        conn.sendall(raw)
        return keep

    return reply


OK_KEEP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_a_kept_connection_carries_the_next_delivery(endpoint):
    e = endpoint(answer(OK_KEEP))
    send = KeepAlive()
    for body in (b"one", b"two", b"three"):
        assert send(e.url, body, HEADERS, LOOPBACK).delivered
    assert e.connections == 1 and len(e.requests) == 3
    first = e.requests[0]
    port = e.url.split(":")[2].split("/")[0]
    assert first.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in first
    assert b"\r\nContent-Length: 3\r\n" in first and first.endswith(b"\r\n\r\none")
    assert b"\r\nx-amz-sns-message-type: Notification\r\n" in first
    send.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\n\r\n",  # more than the client reads
    ],
)
def test_a_connection_the_answer_closes_or_overruns_is_not_reused(endpoint, raw):
    e = endpoint(answer(raw))
    send = KeepAlive()
    assert send(e.url, b"a", HEADERS, LOOPBACK).delivered
    assert send(e.url, b"b", HEADERS, LOOPBACK).delivered
    assert e.connections == 2
    send.close()


def test_a_chunked_answer_read_to_its_end_keeps_the_connection(endpoint):
    e = endpoint(answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
    send = KeepAlive()
    assert send(e.url, b"a", HEADERS, LOOPBACK).delivered
    assert send(e.url, b"b", HEADERS, LOOPBACK).delivered
    assert e.connections == 1
    send.close()


def test_interim_answers_are_skipped(endpoint):
    e = endpoint(
        answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK_KEEP)
    )
    out = post(e.url, b"a", HEADERS, LOOPBACK)
    assert out.delivered and out.detail == "HTTP 200"


def test_a_kept_connection_closed_by_the_subscriber_is_replaced_once(endpoint):
    e = endpoint(answer(OK_KEEP, keep=False))  # answers, then closes the connection
    send = KeepAlive()
    assert send(e.url, b"a", HEADERS, LOOPBACK).delivered
    out = send(e.url, b"b", HEADERS, LOOPBACK)
    assert out.delivered and e.connections == 2
    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in e.requests] == [b"a", b"b"]
    send.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"hello, this is not HTTP\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * (MAX_HEAD + 10),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # closed before the head ended
    ],
)
def test_malformed_answers_are_retried_not_raised(endpoint, raw):
    e = endpoint(answer(raw, keep=False))
    for send in (post, KeepAlive()):
        out = send(e.url, b"a", HEADERS, LOOPBACK)
        assert not out.delivered and out.retry, out


def test_statuses_as_sns_counts_them(endpoint):
    for status, delivered, retry in ((204, True, False), (302, False, False), (404, False, False),
                                     (429, False, True), (503, False, True)):  # fmt: skip
        e = endpoint(answer(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode()))
        out = KeepAlive()(e.url, b"a", HEADERS, LOOPBACK)
        assert (out.delivered, out.retry) == (delivered, retry), status


def test_a_trickling_answer_is_cut_at_the_timeout(endpoint):
    stop = threading.Event()

    def trickle(conn: socket.socket, n: int) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.05):  # one header byte at a time, never the end of the head
            try:
                conn.sendall(b"X")
            except OSError:
                return False
        return False

    e = endpoint(trickle)
    try:
        out = KeepAlive()(e.url, b"a", HEADERS, LOOPBACK, timeout=0.5)
        assert not out.delivered and out.retry and "TimeoutError" in out.detail
    finally:
        stop.set()


def test_a_path_a_request_line_cannot_carry_is_refused(endpoint):
    e = endpoint(answer(OK_KEEP))
    out = KeepAlive()(e.url.replace("/hook", "/ho ok"), b"a", HEADERS, LOOPBACK)
    assert not out.delivered and not out.retry and e.connections == 0


def test_an_address_literal_is_checked_without_a_lookup():
    with pytest.raises(Exception, match="does not deliver to"):
        DestinationPolicy().resolve("127.0.0.1", 80)
    assert LOOPBACK.resolve("127.0.0.1", 80) == "127.0.0.1"
    assert DestinationPolicy().resolve("93.184.216.34", 80) == "93.184.216.34"


def _tls_pair(tmp_path):
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


def test_https_on_kept_connections_checks_the_certificate(tmp_path):
    server_ctx, client_ctx = _tls_pair(tmp_path)
    plain = RawEndpoint(answer(OK_KEEP), wrap=lambda conn: server_ctx.wrap_socket(conn, server_side=True))
    url = plain.url.replace("http://", "https://")
    try:
        send = KeepAlive(tls=client_ctx)
        for body in (b"one", b"two"):
            out = send(url, body, HEADERS, LOOPBACK)
            assert out.delivered, out
        assert plain.connections == 1 and [r.rsplit(b"\r\n\r\n", 1)[1] for r in plain.requests] == [
            b"one",
            b"two",
        ]
        assert b"\r\nHost: 127.0.0.1:" in plain.requests[0]
        send.close()
        refused = KeepAlive()(url, b"x", HEADERS, LOOPBACK)  # the system's trust store: not ours
        assert not refused.delivered and refused.retry and "SSL" in refused.detail
    finally:
        plain.close()


def test_after_a_stale_kept_connection_the_next_try_is_a_new_one(endpoint):
    # Two kept connections, both closed by the subscriber (a restart): one delivery must not
    # fail on the second stale one.
    def slow_then_close(conn: socket.socket, n: int) -> bool:
        threading.Event().wait(0.3)  # both requests in flight at once: two connections
        conn.sendall(OK_KEEP)
        return False

    e = endpoint(slow_then_close)
    send = KeepAlive()
    threads = [threading.Thread(target=send, args=(e.url, b"x", HEADERS, LOOPBACK)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert e.connections == 2 and len(send._kept[next(iter(send._kept))]) == 2
    out = send(e.url, b"y", HEADERS, LOOPBACK)
    assert out.delivered, out
    assert e.connections == 3
    send.close()
