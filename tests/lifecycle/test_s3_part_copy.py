"""UploadPartCopy (a part copied from an object, whole or a byte range) with the caller's rights,
and keys the store refuses answered as S3 errors, not 500s. boto3 against the real endpoint."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from .s3_helpers import World, code, s3


def test_upload_part_copy_copies_the_source_or_its_range(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="src")
    c.create_bucket(Bucket="dst")
    body = os.urandom(6 << 20)  # parts other than the last are at least 5 MiB
    c.put_object(Bucket="src", Key="big", Body=body)
    up = c.create_multipart_upload(Bucket="dst", Key="joined")["UploadId"]
    one = c.upload_part_copy(Bucket="dst", Key="joined", UploadId=up, PartNumber=1,
                             CopySource={"Bucket": "src", "Key": "big"})  # fmt: skip
    two = c.upload_part_copy(Bucket="dst", Key="joined", UploadId=up, PartNumber=2,
                             CopySource={"Bucket": "src", "Key": "big"}, CopySourceRange="bytes=10-109")  # fmt: skip
    assert one["CopyPartResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert two["CopyPartResult"]["ETag"] == f'"{hashlib.md5(body[10:110]).hexdigest()}"'
    parts = [{"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]} for n, r in ((1, one), (2, two))]
    c.complete_multipart_upload(Bucket="dst", Key="joined", UploadId=up, MultipartUpload={"Parts": parts})
    assert c.get_object(Bucket="dst", Key="joined")["Body"].read() == body + body[10:110]
    up2 = c.create_multipart_upload(Bucket="dst", Key="bad")["UploadId"]
    with pytest.raises(ClientError) as err:
        c.upload_part_copy(Bucket="dst", Key="bad", UploadId=up2, PartNumber=1,
                           CopySource={"Bucket": "src", "Key": "big"}, CopySourceRange=f"bytes=0-{6 << 20}")  # fmt: skip
    assert code(err) == "InvalidArgument"


def test_upload_part_copy_from_another_owners_bucket_is_denied(world: World) -> None:
    alice, bob = s3(world, world.alice), s3(world, world.bob)
    alice.create_bucket(Bucket="alice-private")
    alice.put_object(Bucket="alice-private", Key="secret", Body=b"alice's secret")
    bob.create_bucket(Bucket="bob-b")
    up = bob.create_multipart_upload(Bucket="bob-b", Key="loot")["UploadId"]
    with pytest.raises(ClientError) as err:
        bob.upload_part_copy(Bucket="bob-b", Key="loot", UploadId=up, PartNumber=1,
                             CopySource={"Bucket": "alice-private", "Key": "secret"})  # fmt: skip
    assert code(err) == "AccessDenied"
    assert bob.list_parts(Bucket="bob-b", Key="loot", UploadId=up).get("Parts", []) == []


@pytest.mark.parametrize("key", ["../alice-private/secret", "a/../../x", "/etc/passwd"])
def test_keys_the_store_refuses_are_client_errors(world: World, key: str) -> None:
    bob = s3(world, world.bob)
    bob.create_bucket(Bucket="bob-b")
    for call in (
        lambda: bob.get_object(Bucket="bob-b", Key=key),
        lambda: bob.copy_object(Bucket="bob-b", Key="x", CopySource=f"bob-b/{key}"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        status = err.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, (key, err.value.response["Error"])


def test_copies_stream_instead_of_holding_the_source_in_memory(world: World) -> None:
    """CopyObject and UploadPartCopy of a 48 MiB object: the server (a thread of this process)
    allocates a few MiB at a time, not the object (a 5 GiB copy must not take 5 GiB of RAM)."""
    import tracemalloc

    c = s3(world, world.alice)
    c.create_bucket(Bucket="big")
    body = os.urandom(48 << 20)
    world.store.put("big", "source", body)  # written beside the API: no upload to trace
    digest = hashlib.md5(body).hexdigest()
    del body
    tracemalloc.start()
    try:
        copied = c.copy_object(Bucket="big", Key="copy", CopySource={"Bucket": "big", "Key": "source"})
        up = c.create_multipart_upload(Bucket="big", Key="joined")["UploadId"]
        part = c.upload_part_copy(Bucket="big", Key="joined", UploadId=up, PartNumber=1,
                                  CopySource={"Bucket": "big", "Key": "source"})  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert copied["CopyObjectResult"]["ETag"] == part["CopyPartResult"]["ETag"] == f'"{digest}"'
    assert peak < 16 << 20, f"peak {peak >> 20} MiB traced during the copies"
    got = c.get_object(Bucket="big", Key="copy")["Body"].read()
    assert hashlib.md5(got).hexdigest() == digest
