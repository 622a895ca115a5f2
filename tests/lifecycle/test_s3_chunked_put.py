"""aws-chunked PutObject through the endpoint, as SDKs that stream send it: signed chunks
(STREAMING-AWS4-HMAC-SHA256-PAYLOAD, the Java SDK and MinIO clients over HTTP) and unsigned
chunks with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER, boto3 over HTTPS). Large
bodies are decoded as they arrive; small ones are decoded whole. The chunk signatures are computed
here from the SigV4 documentation, independently of the server's code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import zlib

import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .s3_helpers import ClaimingSigner, World, s3, send

EMPTY = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signed_chunks(
    world: World, path: str, data: bytes, chunk: int, *, tamper: bool = False
) -> tuple[dict[str, str], bytes]:
    key = world.alice
    r = AWSRequest(method="PUT", url=world.url + path, data=b"",
                   headers={"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data))})  # fmt: skip
    ClaimingSigner(
        Credentials(key.access_key_id, key.secret_access_key), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    ).add_auth(r)
    headers = dict(r.headers.items())
    amz = headers["X-Amz-Date"]
    scope = f"{amz[:8]}/us-east-1/s3/aws4_request"
    signing = _hmac(
        _hmac(_hmac(_hmac(("AWS4" + key.secret_access_key).encode(), amz[:8]), "us-east-1"), "s3"),
        "aws4_request",
    )
    prev = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = b""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for n, piece in enumerate(pieces):
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256-PAYLOAD", amz, scope, prev, EMPTY, hashlib.sha256(piece).hexdigest())
        )
        prev = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = piece if not (tamper and n == 1) else b"X" + piece[1:]
        body += f"{len(piece):x};chunk-signature={prev}\r\n".encode() + sent + b"\r\n"
    return headers, body


def _unsigned_trailer(world: World, path: str, data: bytes, crc: bytes) -> tuple[dict[str, str], bytes]:
    key = world.alice
    r = AWSRequest(method="PUT", url=world.url + path, data=b"",
                   headers={"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data)),
                            "X-Amz-Trailer": "x-amz-checksum-crc32"})  # fmt: skip
    ClaimingSigner(
        Credentials(key.access_key_id, key.secret_access_key), "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    ).add_auth(r)
    parts = []
    for i in range(0, len(data), 1 << 16):
        piece = data[i : i + (1 << 16)]
        parts += [f"{len(piece):x}\r\n".encode(), piece, b"\r\n"]
    parts.append(b"0\r\nx-amz-checksum-crc32:" + base64.b64encode(crc) + b"\r\n\r\n")
    return dict(r.headers.items()), b"".join(parts)


@pytest.mark.parametrize("size", [3000, 3 << 20])  # decoded whole / decoded as it arrives
def test_signed_chunks_store_the_payload_and_a_tampered_chunk_stores_nothing(world: World, size: int) -> None:
    s3(world, world.alice).create_bucket(Bucket="chunks")
    data = os.urandom(size)
    status, answer = send(
        world, "PUT", "/chunks/good", *_signed_chunks(world, "/chunks/good", data, max(1024, size // 5))
    )
    assert status == 200, answer
    assert world.store.get("chunks", "good") == data
    got = s3(world, world.alice).get_object(Bucket="chunks", Key="good")
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    status, answer = send(
        world,
        "PUT",
        "/chunks/bad",
        *_signed_chunks(world, "/chunks/bad", data, max(1024, size // 5), tamper=True),
    )
    assert status == 403 and b"SignatureDoesNotMatch" in answer
    assert world.store.head("chunks", "bad") is None


@pytest.mark.parametrize("size", [3000, 3 << 20])
def test_unsigned_chunks_with_a_trailing_crc32_are_checked(world: World, size: int) -> None:
    s3(world, world.alice).create_bucket(Bucket="chunks")
    data = os.urandom(size)
    good = zlib.crc32(data).to_bytes(4, "big")
    status, answer = send(world, "PUT", "/chunks/t", *_unsigned_trailer(world, "/chunks/t", data, good))
    assert status == 200, answer
    assert world.store.get("chunks", "t") == data
    status, answer = send(
        world, "PUT", "/chunks/t2", *_unsigned_trailer(world, "/chunks/t2", data, b"\0\0\0\0")
    )
    assert status == 400 and b"BadDigest" in answer
    assert world.store.head("chunks", "t2") is None


def test_a_large_chunked_body_is_not_held_in_memory(world: World) -> None:
    """48 MiB aws-chunked: the server (a thread of this process) holds a few MiB at a time."""
    import tracemalloc

    s3(world, world.alice).create_bucket(Bucket="chunks")
    data = os.urandom(48 << 20)
    headers, body = _unsigned_trailer(world, "/chunks/big", data, zlib.crc32(data).to_bytes(4, "big"))
    digest = hashlib.md5(data).hexdigest()
    del data
    tracemalloc.start()
    try:
        status, answer = send(world, "PUT", "/chunks/big", headers, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200, answer
    assert peak < 16 << 20, f"peak {peak >> 20} MiB traced during the PUT"
    assert hashlib.md5(world.store.get("chunks", "big")).hexdigest() == digest


@pytest.mark.parametrize("size", [3000, 3 << 20])
def test_an_announced_trailing_checksum_that_never_comes_is_a_mismatch(world: World, size: int) -> None:
    """x-amz-trailer names a checksum and the body ends without it: both paths (decoded whole,
    decoded as it arrives) refuse it and store nothing, as they refuse a wrong one."""
    s3(world, world.alice).create_bucket(Bucket="chunks")
    data = os.urandom(size)
    headers, body = _unsigned_trailer(world, "/chunks/none", data, zlib.crc32(data).to_bytes(4, "big"))
    body = body[: body.rindex(b"0\r\n")] + b"0\r\n\r\n"  # the last chunk, no trailer
    status, answer = send(world, "PUT", "/chunks/none", headers, body)
    assert status == 400 and b"BadDigest" in answer, answer
    assert world.store.head("chunks", "none") is None
