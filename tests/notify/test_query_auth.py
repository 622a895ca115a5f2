"""The SNS/CloudWatch Query route (form-encoded POST /) and CloudWatch's CBOR/JSON routes
authenticate on the headers before they read a byte of the body: an unsigned or unknown caller
is answered while the body is still unsent, and 120 such callers at once do not grow the server."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials

FORM = "application/x-www-form-urlencoded; charset=utf-8"
BIG = 24 << 20


def _answer_without_body(url: str, head: dict[str, str], *, chunked: bool = False) -> tuple[int, bytes]:
    """Send only the request head (and, chunked, the start of a 24 MiB chunk); the server must
    answer anyway. If it waited for the body, recv times out and the test fails."""
    parts = urlsplit(url)
    path = head.pop(":path", "/")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        lines = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        if chunked:
            lines += "Transfer-Encoding: chunked\r\n"
        else:
            lines += f"Content-Length: {BIG}\r\n"
        lines += "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
        first = f"{BIG:x}\r\n".encode() + b"Action=Publish&" if chunked else b"Action=Publish&"
        s.sendall(lines.encode() + first)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest


def _signed_head(url: str, key_id: str, secret: str, service: str) -> dict[str, str]:
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=url + "/", data=b"Action=ListTopics", headers={"Content-Type": FORM}
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key_id, secret), service, "us-east-1").add_auth(
        req
    )
    head = dict(req.headers.items())
    head.pop("Content-Length", None)
    return head


def test_unsigned_query_post_is_answered_before_its_body(server):
    for chunked in (False, True):
        status, rest = _answer_without_body(server.url, {"Content-Type": FORM}, chunked=chunked)
        assert status == 403 and b"MissingAuthenticationToken" in rest


def test_unknown_key_and_wrong_service_are_refused_before_the_body(server, alice):
    head = _signed_head(server.url, "AKIDNOSUCHKEY", alice.secret_access_key, "sns")
    status, rest = _answer_without_body(server.url, head, chunked=True)
    assert status == 403 and b"InvalidClientTokenId" in rest
    head = _signed_head(server.url, alice.access_key_id, alice.secret_access_key, "s3")
    status, rest = _answer_without_body(server.url, head, chunked=True)
    assert status == 403 and b"SignatureDoesNotMatch" in rest and b"'s3'" in rest


def test_unsigned_cloudwatch_cbor_and_json_are_answered_before_their_body(server):
    cbor = {":path": "/service/GraniteServiceVersion20100801/operation/PutMetricData"}
    status, _ = _answer_without_body(server.url, {**cbor, "Content-Type": "application/cbor"})
    assert status == 403
    head = {
        "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData",
        "Content-Type": "application/x-amz-json-1.0",
    }
    status, _ = _answer_without_body(server.url, head, chunked=True)
    assert status == 403


def _signed_raw(url: str, key, body: bytes) -> tuple[int, bytes]:
    """A signed POST over a plain socket: a server that answers before reading the whole body
    (and closes) is read from rather than reported as a broken pipe."""
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=url + "/", data=body, headers={"Content-Type": FORM}
    )
    creds = botocore.credentials.Credentials(key.access_key_id, key.secret_access_key)
    botocore.auth.SigV4Auth(creds, "sns", "us-east-1").add_auth(req)
    parts = urlsplit(url)
    head = f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() != "content-length")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        try:
            s.sendall(head.encode() + b"\r\n" + body)
        except OSError:
            pass  # answered and closed early
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            if b"</ErrorResponse>" in data or b"Response>" in data.split(b"\r\n\r\n", 1)[-1][-40:]:
                break
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest


def test_signed_body_over_the_action_cap_is_refused(server, alice):
    body = b"Action=ListTopics&Version=2010-03-31&Pad=" + b"x" * (100 * 1024)
    status, text = _signed_raw(server.url, alice, body)
    assert status == 413 and b"ListTopics" in text
    body = b"Action=Publish&Version=2010-03-31&Pad=" + b"x" * (2 << 20)
    status, text = _signed_raw(server.url, alice, body)
    assert status == 413 and b"RequestEntityTooLarge" in text


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_120_unauthenticated_24_mib_posts_do_not_grow_the_server(server):
    """The server runs in this process: its resident memory is sampled during the flood; had it
    buffered the bodies (or even 1 MiB of each) it would grow by well over 100 MiB."""
    before = _rss_kib()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_kib())
            stop.wait(0.01)

    statuses: list[int] = []

    def attack(i: int) -> None:
        try:
            statuses.append(_answer_without_body(server.url, {"Content-Type": FORM}, chunked=i % 2 == 0)[0])
        except OSError:
            statuses.append(-1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=attack, args=(i,)) for i in range(120)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    assert statuses.count(403) == 120, statuses
    assert (peak[0] - before) < 64 * 1024, f"grew {(peak[0] - before) // 1024} MiB"
