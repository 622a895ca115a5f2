"""tailrace.api.client's own HTTP/1.1 transport: framing (Content-Length, chunked, close),
keep-alive reuse, the resend on a kept-alive connection the server closed, and refusal of
control characters in what it would write. A scripted socket server answers byte for byte; the
real API is exercised through this client by the CLI tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tailrace.api.client import ApiCallError, DataPipelineClient
from tailrace.httpwire import Connection, RequestError

Script = Callable[[socket.socket, bytes], bool]
"""Answer one request (its head and body as received); False closes the connection."""


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def scripted() -> Iterator[Callable[[list[Script]], tuple[str, list[bytes], list[int]]]]:
    """A server on a free port answering the n-th request with script[n]; it records the
    requests and the number of connections each arrived on."""
    servers: list[socket.socket] = []

    def start(script: list[Script]) -> tuple[str, list[bytes], list[int]]:
        srv = socket.create_server(("127.0.0.1", 0))
        servers.append(srv)
        seen: list[bytes] = []
        connections: list[int] = []

        def serve() -> None:
            n = accepted = 0
            while n < len(script):
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                accepted += 1
                with conn:
                    while n < len(script):
                        request = _read_request(conn)
                        if not request:
                            break
                        seen.append(request)
                        connections.append(accepted)
                        keep = script[n](conn, request)
                        n += 1
                        if not keep:
                            break

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{srv.getsockname()[1]}", seen, connections

    yield start
    for srv in servers:
        srv.close()


def _answer(raw: bytes, keep: bool = True) -> Script:
    def script(conn: socket.socket, _request: bytes) -> bool:
        conn.sendall(raw)
        return keep

    return script


OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 11\r\n\r\n{"a": "ok"}'


def test_content_length_and_keep_alive(scripted):
    url, seen, conns = scripted([_answer(OK), _answer(OK)])
    client = DataPipelineClient(url, "TRKEXAMPLE", "secret")
    assert client.call("ListPipelines") == {"a": "ok"}
    assert client.call("ListPipelines") == {"a": "ok"}
    assert len(set(conns)) == 1  # both on one kept-alive connection
    head = seen[0].split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST / HTTP/1.1\r\n")
    assert "X-Amz-Target: DataPipeline.ListPipelines" in head
    assert "Authorization: AWS4-HMAC-SHA256 Credential=TRKEXAMPLE/" in head
    assert seen[0].endswith(b"\r\n\r\n{}")


def test_chunked_answer_and_error_status(scripted):
    parts = [b'{"__type":', b'"X#ValidationException", "m', b'essage": "bad"}']
    chunks = [b"%x\r\n%s\r\n" % (len(parts[0]), parts[0])]
    chunks += [b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts[1:]]
    chunked = (
        b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"".join(chunks)
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )
    url, _, conns = scripted([_answer(chunked), _answer(OK)])
    client = DataPipelineClient(url, "TRKEXAMPLE", "secret")
    with pytest.raises(ApiCallError) as err:
        client.call("ListPipelines")
    assert (err.value.code, err.value.status) == ("ValidationException", 400)
    assert client.call("ListPipelines") == {"a": "ok"}  # the framing left the stream in step
    assert len(set(conns)) == 1


def test_connection_close_and_body_until_close(scripted):
    close = b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"b": 1}'
    url, _, conns = scripted([_answer(close, keep=False), _answer(OK)])
    client = DataPipelineClient(url, "TRKEXAMPLE", "secret")
    assert client.call("ListPipelines") == {"b": 1}
    assert client.call("ListPipelines") == {"a": "ok"}
    assert len(set(conns)) == 2  # a new connection after the server's close


def test_resends_once_when_a_kept_alive_connection_was_closed(scripted):
    # The server closes after answering, without saying so: the next request finds the
    # connection gone before any answer and is sent again on a new one.
    url, seen, conns = scripted([_answer(OK, keep=False), _answer(OK)])
    client = DataPipelineClient(url, "TRKEXAMPLE", "secret")
    assert client.call("ListPipelines") == {"a": "ok"}
    assert client.call("ListPipelines") == {"a": "ok"}
    assert len(seen) == 2 and len(set(conns)) == 2


def test_refuses_control_characters():
    conn = Connection("127.0.0.1", 9, timeout=1)
    with pytest.raises(RequestError):
        conn.request("GET", "/api/v1/pipelines/a b", [], b"")
    with pytest.raises(RequestError):
        conn.request("GET", "/x", [("X-Bad", "a\r\nInjected: 1")], b"")
    assert conn.sock is None  # refused before connecting
