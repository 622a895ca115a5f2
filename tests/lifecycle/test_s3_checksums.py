"""Flexible checksums (x-amz-checksum-*): the body is checked against them, buffered or streamed,
for PutObject and UploadPart; a mismatch is BadDigest and stores nothing; the value is echoed.
boto3 against the real endpoint (it sends CRC32 with every PutObject by default)."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from botocore.exceptions import ClientError

from tailrace.api.s3.spool import STREAM_AT

from .s3_helpers import World, code, s3

SIZES = (1000, STREAM_AT + 777)  # the buffered path and the streamed one


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("size", SIZES)
def test_the_default_crc32_is_checked_and_echoed(world: World, size: int) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="sums")
    body = os.urandom(size)
    got = c.put_object(Bucket="sums", Key="k", Body=body)
    assert got["ChecksumCRC32"] == crc32(body)
    sha = c.put_object(Bucket="sums", Key="s", Body=body, ChecksumAlgorithm="SHA256")
    assert sha["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    sha1 = c.put_object(Bucket="sums", Key="s1", Body=body, ChecksumAlgorithm="SHA1")
    assert sha1["ChecksumSHA1"] == base64.b64encode(hashlib.sha1(body).digest()).decode()


@pytest.mark.parametrize("size", SIZES)
def test_a_wrong_checksum_is_bad_digest_and_stores_nothing(world: World, size: int) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="sums")
    body = os.urandom(size)
    wrong = crc32(body + b"x")
    with pytest.raises(ClientError) as err:
        c.put_object(Bucket="sums", Key="k", Body=body, ChecksumCRC32=wrong)
    assert code(err) == "BadDigest" and "CRC32" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        c.head_object(Bucket="sums", Key="k")
    assert missing.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    up = c.create_multipart_upload(Bucket="sums", Key="m")["UploadId"]
    with pytest.raises(ClientError) as part:
        c.upload_part(Bucket="sums", Key="m", UploadId=up, PartNumber=1, Body=body, ChecksumCRC32=wrong)
    assert code(part) == "BadDigest"
    assert c.list_parts(Bucket="sums", Key="m", UploadId=up).get("Parts", []) == []
    ok = c.upload_part(
        Bucket="sums", Key="m", UploadId=up, PartNumber=1, Body=body, ChecksumCRC32=crc32(body)
    )
    assert ok["ChecksumCRC32"] == crc32(body)


def test_an_algorithm_the_store_cannot_check_is_refused_by_name(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="sums")
    with pytest.raises(ClientError) as err:
        c.put_object(Bucket="sums", Key="k", Body=b"abc", ChecksumCRC32C="NSRBwg==")
    assert code(err) == "NotImplemented"
    assert "x-amz-checksum-crc32c" in err.value.response["Error"]["Message"]
