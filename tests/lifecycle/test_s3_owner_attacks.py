"""Another key holder (bob) against alice's bucket on the S3 endpoint, by every route the red-team
pass tried: multipart uploads of hers (ListParts, UploadPart, UploadPartCopy, Complete, Abort),
her lifecycle and upload listing, DeleteObjects, virtual-host Host headers, and keys spelled
with %2e%2e or backslashes. Each is refused with an S3 error; her data is unchanged."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .s3_helpers import World, code, s3


@pytest.fixture
def hers(world: World) -> dict[str, Any]:
    alice = s3(world, world.alice)
    alice.create_bucket(Bucket="alice-private")
    alice.put_object(Bucket="alice-private", Key="secret", Body=b"alice's secret")
    alice.put_bucket_lifecycle_configuration(
        Bucket="alice-private",
        LifecycleConfiguration={
            "Rules": [{"ID": "keep", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 9}}]
        },
    )
    up = alice.create_multipart_upload(Bucket="alice-private", Key="big")["UploadId"]
    alice.upload_part(Bucket="alice-private", Key="big", UploadId=up, PartNumber=1, Body=b"part one")
    s3(world, world.bob).create_bucket(Bucket="bob-b")
    return {"client": alice, "upload": up}


def test_bob_reaches_nothing_of_alices_bucket(world: World, hers: dict[str, Any]) -> None:
    bob, up = s3(world, world.bob), hers["upload"]
    calls: list[Callable[[], Any]] = [
        lambda: bob.list_parts(Bucket="alice-private", Key="big", UploadId=up),
        lambda: bob.upload_part(Bucket="alice-private", Key="big", UploadId=up, PartNumber=2, Body=b"x"),
        lambda: bob.upload_part_copy(
            Bucket="alice-private", Key="big", UploadId=up, PartNumber=2, CopySource="bob-b/none"
        ),
        lambda: bob.complete_multipart_upload(
            Bucket="alice-private", Key="big", UploadId=up, MultipartUpload={"Parts": []}
        ),
        lambda: bob.abort_multipart_upload(Bucket="alice-private", Key="big", UploadId=up),
        lambda: bob.list_multipart_uploads(Bucket="alice-private"),
        lambda: bob.get_bucket_lifecycle_configuration(Bucket="alice-private"),
        lambda: bob.delete_bucket_lifecycle(Bucket="alice-private"),
        lambda: bob.delete_objects(Bucket="alice-private", Delete={"Objects": [{"Key": "secret"}]}),
        lambda: bob.head_bucket(Bucket="alice-private"),
        lambda: bob.head_object(Bucket="alice-private", Key="secret"),
        lambda: bob.get_bucket_location(Bucket="alice-private"),
        lambda: bob.delete_bucket(Bucket="alice-private"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, err.value.response
    alice = hers["client"]
    assert alice.get_object(Bucket="alice-private", Key="secret")["Body"].read() == b"alice's secret"
    parts = alice.list_parts(Bucket="alice-private", Key="big", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    assert alice.get_bucket_lifecycle_configuration(Bucket="alice-private")["Rules"][0]["ID"] == "keep"


def test_bobs_own_upload_id_does_not_open_alices(world: World, hers: dict[str, Any]) -> None:
    """An upload id of his own, used with her bucket or her upload's id with his bucket."""
    bob = s3(world, world.bob)
    mine = bob.create_multipart_upload(Bucket="bob-b", Key="big")["UploadId"]
    for bucket, upload in (("alice-private", mine), ("bob-b", hers["upload"])):
        with pytest.raises(ClientError) as err:
            bob.list_parts(Bucket=bucket, Key="big", UploadId=upload)
        assert code(err) in ("AccessDenied", "NoSuchUpload")


def _raw(world: World, key: Any, method: str, host: str, path: str) -> tuple[int, bytes]:
    """A request signed over exactly this Host and raw path (no client normalisation)."""
    port = world.url.rsplit(":", 1)[1]
    req = AWSRequest(method=method, url=f"http://{host}:{port}{path}")
    S3SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in {**dict(req.headers.items()), "Host": f"{host}:{port}"}.items():
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    return resp.status, resp.read()


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("alice-private.localhost", "/secret"),  # her bucket as a virtual host
        ("ALICE-PRIVATE.localhost", "/secret"),
        ("bob-b.localhost", "/../alice-private/secret"),
        ("bob-b.localhost", "/%2e%2e/alice-private/secret"),
        ("localhost", "/bob-b/%2e%2e/alice-private/secret"),
        ("localhost", "/bob-b/..%5calice-private%5csecret"),
        ("localhost", "/bob-b/%2e%2e%2falice-private%2fsecret"),
        ("localhost", "/alice-private%2fsecret"),
        ("localhost", "/bob-b/a%00b"),
    ],
)
def test_host_and_key_spellings_never_reach_her_object(
    world: World, hers: dict[str, Any], host: str, path: str
) -> None:
    status, body = _raw(world, world.bob, "GET", host, path)
    assert 400 <= status < 500, (status, body)
    assert b"alice's secret" not in body
