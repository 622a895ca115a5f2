"""Large PutObject bodies are streamed to a staged file (tailrace.api.s3.spool): the object appears
whole or not at all, only after its signed SHA-256 and Content-MD5 match, never for another owner,
and a body cut short leaves nothing behind. boto3 against the real endpoint."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tailrace.api.s3.spool import BLOCK, STREAM_AT
from tailrace.state import AccessKey

from .s3_helpers import World, code, s3

BIG = 3 * BLOCK + 12345  # several blocks and a partial one


def staged_files(world: World, bucket: str) -> list[Path]:
    return [p for p in (world.home / "s3" / bucket).rglob(".*.tmp")]


def test_a_large_put_is_written_whole_with_its_md5_etag(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="big")
    body = os.urandom(BIG)
    md5 = hashlib.md5(body).digest()
    got = c.put_object(Bucket="big", Key="a/b.bin", Body=body, ContentMD5=base64.b64encode(md5).decode(),
                       Metadata={"origin": "test"}, ContentType="application/x-test")  # fmt: skip
    assert got["ETag"] == f'"{md5.hex()}"'
    obj = c.get_object(Bucket="big", Key="a/b.bin")
    assert obj["Body"].read() == body
    assert obj["ETag"] == f'"{md5.hex()}"' and obj["Metadata"] == {"origin": "test"}
    assert obj["ContentType"] == "application/x-test"
    assert staged_files(world, "big") == []
    # At the threshold the streamed path is taken, just below it the buffered one: same result.
    for n in (STREAM_AT, STREAM_AT - 1):
        data = os.urandom(n)
        assert (
            c.put_object(Bucket="big", Key=f"edge-{n}", Body=data)["ETag"].strip('"')
            == hashlib.md5(data).hexdigest()
        )
        assert c.get_object(Bucket="big", Key=f"edge-{n}")["Body"].read() == data


def test_a_body_that_differs_from_its_signed_hash_or_md5_changes_nothing(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="big")
    c.put_object(Bucket="big", Key="k", Body=b"version 1")

    def tamper(request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        request.body = b"X" + body[1:]  # same length, other bytes than the signed hash covers

    bad = s3(world, world.alice)
    bad.meta.events.register("before-send.s3.PutObject", tamper)
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket="big", Key="k", Body=os.urandom(BIG))
    assert code(e) == "XAmzContentSHA256Mismatch"
    with pytest.raises(ClientError) as e:
        c.put_object(
            Bucket="big", Key="k", Body=os.urandom(BIG), ContentMD5=base64.b64encode(b"0" * 16).decode()
        )
    assert code(e) == "BadDigest"
    assert c.get_object(Bucket="big", Key="k")["Body"].read() == b"version 1"
    assert staged_files(world, "big") == []


def signed_put(world: World, key: AccessKey, path: str, length: int) -> dict[str, str]:
    """Headers of a PUT signed with UNSIGNED-PAYLOAD (as HTTPS clients send large bodies)."""

    class Unsigned(S3SigV4Auth):
        def payload(self, request: Any) -> str:
            return "UNSIGNED-PAYLOAD"

    req = AWSRequest(method="PUT", url=world.url + path, headers={"Content-Length": str(length)})
    Unsigned(Credentials(key.access_key_id, key.secret_access_key), "s3", "us-east-1").add_auth(req)
    return {k: str(v) for k, v in req.headers.items()}


def refused_before_body(world: World, headers: dict[str, str]) -> tuple[int, str]:
    """Status and S3 error code of a PUT that waits for 100 Continue before sending its body."""
    conn = http.client.HTTPConnection(world.url.removeprefix("http://"), timeout=30)
    try:
        conn.putrequest("PUT", "/big/u.bin", skip_accept_encoding=True)
        for k, v in {**headers, "Expect": "100-continue"}.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode().split("<Code>")[1].split("</Code>")[0]
    finally:
        conn.close()


def test_unsigned_payload_is_streamed_and_the_owner_is_checked_before_the_body(world: World) -> None:
    s3(world, world.alice).create_bucket(Bucket="big")
    body = os.urandom(BIG)
    put = urllib.request.Request(world.url + "/big/u.bin", data=body, method="PUT",
                                 headers=signed_put(world, world.alice, "/big/u.bin", len(body)))  # fmt: skip
    with urllib.request.urlopen(put) as resp:
        assert resp.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert s3(world, world.alice).get_object(Bucket="big", Key="u.bin")["Body"].read() == body
    # Bob's signature is good, the bucket is not his: refused before the body is read.
    assert refused_before_body(world, signed_put(world, world.bob, "/big/u.bin", BIG)) == (
        403,
        "AccessDenied",
    )
    with pytest.raises(ClientError) as ce:
        s3(world, world.bob).put_object(Bucket="big", Key="u.bin", Body=os.urandom(BIG))
    assert code(ce) == "AccessDenied"
    wrong = AccessKey(access_key_id=world.alice.access_key_id, secret_access_key="not-the-secret",
                      owner="alice", created_at=datetime.now(UTC))  # fmt: skip
    forged = signed_put(world, wrong, "/big/u.bin", BIG)
    assert refused_before_body(world, forged) == (403, "SignatureDoesNotMatch")
    assert s3(world, world.alice).get_object(Bucket="big", Key="u.bin")["Body"].read() == body
    assert staged_files(world, "big") == []


def test_a_body_cut_short_leaves_no_object_and_no_staged_file(world: World) -> None:
    s3(world, world.alice).create_bucket(Bucket="big")
    host, port = world.url.removeprefix("http://").split(":")
    headers = signed_put(world, world.alice, "/big/cut.bin", BIG)
    headers["Host"] = f"{host}:{port}"
    head = "PUT /big/cut.bin HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + os.urandom(BIG // 2))
        deadline = time.monotonic() + 30
        while not staged_files(world, "big") and time.monotonic() < deadline:
            time.sleep(0.05)  # the body is being received into a staged file
        assert staged_files(world, "big")
    deadline = time.monotonic() + 30
    while staged_files(world, "big") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert staged_files(world, "big") == []
    with pytest.raises(ClientError) as e:
        s3(world, world.alice).head_object(Bucket="big", Key="cut.bin")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_readers_see_one_whole_version_while_large_puts_replace_it(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="big")
    versions = [bytes([i]) * BIG for i in range(3)]
    c.put_object(Bucket="big", Key="v", Body=versions[0])
    seen: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        r = s3(world, world.alice)
        while not done.is_set():
            seen.append(r.get_object(Bucket="big", Key="v")["Body"].read())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for v in versions[1:] * 2:
            c.put_object(Bucket="big", Key="v", Body=v)
    finally:
        done.set()
        reader.join()
    assert seen and all(body in versions for body in seen)


def test_streamed_parts_are_checked_like_objects(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="big")
    up = c.create_multipart_upload(Bucket="big", Key="m")["UploadId"]
    first, last = os.urandom(5 * BLOCK), os.urandom(BIG)

    def tamper(request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        request.body = b"X" + body[1:]

    bad = s3(world, world.alice)
    bad.meta.events.register("before-send.s3.UploadPart", tamper)
    with pytest.raises(ClientError) as e:
        bad.upload_part(Bucket="big", Key="m", UploadId=up, PartNumber=1, Body=first)
    assert code(e) == "XAmzContentSHA256Mismatch"
    assert c.list_parts(Bucket="big", Key="m", UploadId=up).get("Parts", []) == []
    with pytest.raises(ClientError) as e:  # another owner's key, a good signature
        s3(world, world.bob).upload_part(Bucket="big", Key="m", UploadId=up, PartNumber=1, Body=first)
    assert code(e) == "AccessDenied"
    etags = [
        c.upload_part(Bucket="big", Key="m", UploadId=up, PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, first), (2, last))
    ]
    assert etags == [f'"{hashlib.md5(b).hexdigest()}"' for b in (first, last)]
    c.complete_multipart_upload(Bucket="big", Key="m", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})  # fmt: skip
    assert c.get_object(Bucket="big", Key="m")["Body"].read() == first + last
    assert staged_files(world, "big") == []
    assert not [p for p in (world.home / "s3" / ".multipart").rglob("*") if p.is_file()]
