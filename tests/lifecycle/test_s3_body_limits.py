"""Bodies are read only after the signature is checked (beyond 1 MiB declared, or of unknown
length), and capped per operation: an unauthenticated client cannot make the server buffer a
large body, an owner cannot send a 100 MiB DeleteObjects document."""

from __future__ import annotations

import hashlib
import socket
from urllib.parse import urlsplit

from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .s3_helpers import ClaimingSigner, World, s3, send


def _exchange(world: World, head: bytes, body_part: bytes) -> bytes:
    """Send the request head and only part of the declared body, then read the answer: a server
    that waits for the whole body before checking the signature never answers (read times out)."""
    url = urlsplit(world.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + body_part)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except TimeoutError:
            pass
        return got


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def test_an_unsigned_large_body_is_refused_before_it_is_read(world: World) -> None:
    s3(world, world.alice).create_bucket(Bucket="bbb")
    host = urlsplit(world.url).netloc
    for extra in ({"Content-Length": str(200 << 20)}, {"Transfer-Encoding": "chunked"}):
        head = _head("POST", "/bbb?delete", {"Host": host, **extra})
        answer = _exchange(
            world, head, b"x" * 1024 if "Content-Length" in extra else b"400\r\n" + b"x" * 1024
        )
        assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        assert b"anonymous access is not allowed" in answer or b"AccessDenied" in answer


def test_a_bad_signature_on_a_large_put_is_refused_before_the_body(world: World) -> None:
    s3(world, world.alice).create_bucket(Bucket="bbb")
    host = urlsplit(world.url).netloc
    bogus = (
        "AWS4-HMAC-SHA256 Credential=AKIANOTAKEY/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64
    )
    head = _head(
        "PUT",
        "/bbb/k",
        {"Host": host, "Transfer-Encoding": "chunked", "Authorization": bogus,
         "X-Amz-Date": "20260101T000000Z", "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )  # fmt: skip
    answer = _exchange(world, head, b"400\r\n" + b"x" * 1024)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def _signed(world: World, method: str, path: str, body: bytes, payload: str) -> tuple[dict[str, str], bytes]:
    key = world.alice
    r = AWSRequest(method=method, url=world.url + path, data=body)
    ClaimingSigner(Credentials(key.access_key_id, key.secret_access_key), payload).add_auth(r)
    assert r.headers["X-Amz-Content-SHA256"] == payload
    return dict(r.headers.items()), body


def test_a_document_body_is_capped_but_object_data_is_not(world: World) -> None:
    s3(world, world.alice).create_bucket(Bucket="bbb")
    big = b"<Delete>" + b" " * (17 << 20) + b"</Delete>"
    status, answer = send(
        world, "POST", "/bbb?delete", *_signed(world, "POST", "/bbb?delete", big, "UNSIGNED-PAYLOAD")
    )
    assert status == 400 and b"MaxMessageLengthExceeded" in answer, (
        "a 17 MiB DeleteObjects document was accepted"
    )
    # the same size as object data, with a signed payload, goes through the buffered path
    data = b"y" * (17 << 20)
    headers, body = _signed(world, "PUT", "/bbb/data", data, hashlib.sha256(data).hexdigest())
    headers["Content-Encoding"] = "identity"
    status, answer = send(world, "PUT", "/bbb/data", headers, body)
    assert status == 200, answer
    assert world.store.get("bbb", "data") == data


def test_a_large_body_with_a_wrong_payload_hash_is_refused(world: World) -> None:
    s3(world, world.alice).create_bucket(Bucket="bbb")
    xml = b"<Delete><Object><Key>k</Key></Object></Delete>" + b" " * (2 << 20)
    signed = _signed(world, "POST", "/bbb?delete", xml, hashlib.sha256(b"other").hexdigest())
    status, answer = send(world, "POST", "/bbb?delete", *signed)
    assert status == 400 and b"XAmzContentSHA256Mismatch" in answer, (
        "a body not matching its signed SHA-256 was accepted"
    )
