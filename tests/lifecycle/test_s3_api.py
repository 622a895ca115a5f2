"""The S3 REST API driven by unchanged boto3 `s3` and the AWS CLI, over HTTP on a free port."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tailrace.api.keys import KeyStore
from tailrace.clock import SystemClock
from tailrace.lifecycle import runner
from tailrace.state import AccessKey
from tailrace.storage import AccessDeniedError, Storage

from .s3_helpers import World, code, s3


def test_buckets_objects_listing_ranges_and_errors(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="weblogs")
    with pytest.raises(ClientError) as e:
        c.create_bucket(Bucket="weblogs")
    assert code(e) == "BucketAlreadyOwnedByYou"
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["weblogs"]
    c.head_bucket(Bucket="weblogs")

    for day in ("20260301", "20260302"):
        for h in range(3):
            c.put_object(Bucket="weblogs", Key=f"logs/{day}/host-{h:02d}_1.gz", Body=b"x" * (100 + h))
    put = c.put_object(Bucket="weblogs", Key="a.txt", Body=b"0123456789", ContentType="text/plain",
                       Metadata={"team": "web"}, StorageClass="STANDARD_IA")  # fmt: skip
    assert put["ETag"] == '"781e5e245d69b566979b86e28d23f2c7"'  # MD5 of the body

    got = c.get_object(Bucket="weblogs", Key="a.txt")
    assert got["Body"].read() == b"0123456789"
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"team": "web"}
    assert got["StorageClass"] == "STANDARD_IA"
    assert c.get_object(Bucket="weblogs", Key="a.txt", Range="bytes=2-4")["Body"].read() == b"234"
    assert c.get_object(Bucket="weblogs", Key="a.txt", Range="bytes=-3")["Body"].read() == b"789"
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket="weblogs", Key="a.txt", Range="bytes=50-")
    assert code(e) == "InvalidRange"
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket="weblogs", Key="a.txt", IfNoneMatch=put["ETag"])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket="weblogs", Key="nope")
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        c.list_objects_v2(Bucket="nobucket")
    assert code(e) == "NoSuchBucket"

    top = c.list_objects_v2(Bucket="weblogs", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["logs/"]
    assert [o["Key"] for o in top["Contents"]] == ["a.txt"]
    assert top["Contents"][0]["StorageClass"] == "STANDARD_IA"
    days = c.list_objects_v2(Bucket="weblogs", Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in days["CommonPrefixes"]] == ["logs/20260301/", "logs/20260302/"]
    keys: list[str] = []
    for page in c.get_paginator("list_objects_v2").paginate(
        Bucket="weblogs", Prefix="logs/", PaginationConfig={"PageSize": 4}
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == sorted(keys) and len(keys) == 6
    after = c.list_objects_v2(Bucket="weblogs", Prefix="logs/", StartAfter="logs/20260302/host-00_1.gz")
    assert [o["Key"] for o in after["Contents"]] == [
        "logs/20260302/host-01_1.gz",
        "logs/20260302/host-02_1.gz",
    ]

    c.copy_object(Bucket="weblogs", Key="b.txt", CopySource={"Bucket": "weblogs", "Key": "a.txt"})
    assert c.get_object(Bucket="weblogs", Key="b.txt")["Metadata"] == {"team": "web"}
    out = c.delete_objects(Bucket="weblogs", Delete={"Objects": [{"Key": "a.txt"}, {"Key": "b.txt"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a.txt", "b.txt"]
    c.delete_object(Bucket="weblogs", Key="logs/20260301/host-00_1.gz")
    with pytest.raises(ClientError) as e:
        c.delete_bucket(Bucket="weblogs")
    assert code(e) == "BucketNotEmpty"

    # The same files the pipelines read: the facade sees what the API wrote.
    facade = Storage(home=world.home)
    assert facade.read_bytes("s3://weblogs/logs/20260302/host-02_1.gz") == b"x" * 102


def test_another_key_holder_cannot_touch_the_bucket(world: World) -> None:
    a, b = s3(world, world.alice), s3(world, world.bob)
    a.create_bucket(Bucket="private-logs")
    a.put_object(Bucket="private-logs", Key="k", Body=b"secret")
    for call in (
        lambda: b.get_object(Bucket="private-logs", Key="k"),
        lambda: b.put_object(Bucket="private-logs", Key="k", Body=b"mine"),
        lambda: b.list_objects_v2(Bucket="private-logs"),
        lambda: b.delete_object(Bucket="private-logs", Key="k"),
        lambda: b.copy_object(
            Bucket="private-logs", Key="c", CopySource={"Bucket": "private-logs", "Key": "k"}
        ),
        lambda: b.put_bucket_lifecycle_configuration(
            Bucket="private-logs",
            LifecycleConfiguration={
                "Rules": [{"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]
            },
        ),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        b.create_bucket(Bucket="private-logs")
    assert code(e) == "BucketAlreadyExists"
    assert b.list_buckets()["Buckets"] == []
    b.create_bucket(Bucket="bobs")
    with pytest.raises(ClientError) as e:  # copying out of alice's bucket into his own
        b.copy_object(Bucket="bobs", Key="c", CopySource={"Bucket": "private-logs", "Key": "k"})
    assert code(e) == "AccessDenied"
    assert a.get_object(Bucket="private-logs", Key="k")["Body"].read() == b"secret"


def test_bad_signatures_are_refused(world: World) -> None:
    wrong = AccessKey(access_key_id=world.alice.access_key_id, secret_access_key="not-the-secret",
                      owner="alice", created_at=datetime.now(UTC))  # fmt: skip
    with pytest.raises(ClientError) as e:
        s3(world, wrong).list_buckets()
    assert code(e) == "SignatureDoesNotMatch"
    world.keys.set_active(world.alice.access_key_id, False)
    with pytest.raises(ClientError) as e:
        s3(world, world.alice).list_buckets()
    assert code(e) == "InvalidAccessKeyId"


def test_multipart_upload(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="big")
    up = c.create_multipart_upload(Bucket="big", Key="blob.bin")
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), b"tail"]
    etags = [
        c.upload_part(Bucket="big", Key="blob.bin", UploadId=up["UploadId"], PartNumber=i + 1, Body=p)["ETag"]
        for i, p in enumerate(parts)
    ]
    listed = c.list_parts(Bucket="big", Key="blob.bin", UploadId=up["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [u["UploadId"] for u in c.list_multipart_uploads(Bucket="big")["Uploads"]] == [up["UploadId"]]
    done = c.complete_multipart_upload(
        Bucket="big", Key="blob.bin", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]},
    )  # fmt: skip
    assert done["ETag"].endswith('-3"')
    assert c.get_object(Bucket="big", Key="blob.bin")["Body"].read() == b"".join(parts)
    aborted = c.create_multipart_upload(Bucket="big", Key="x")
    c.abort_multipart_upload(Bucket="big", Key="x", UploadId=aborted["UploadId"])
    with pytest.raises(ClientError) as e:
        c.list_parts(Bucket="big", Key="x", UploadId=aborted["UploadId"])
    assert code(e) == "NoSuchUpload"


def test_lifecycle_configuration_archive_and_restore_through_the_api(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="weblogs")
    rules = {"Rules": [{"ID": "raw", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
                        "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}], "Expiration": {"Days": 365}}]}  # fmt: skip
    c.put_bucket_lifecycle_configuration(Bucket="weblogs", LifecycleConfiguration=rules)
    got = c.get_bucket_lifecycle_configuration(Bucket="weblogs")
    assert got["Rules"][0]["Transitions"] == [{"Days": 7, "StorageClass": "GLACIER"}]
    with pytest.raises(ClientError) as e:
        c.put_bucket_lifecycle_configuration(Bucket="weblogs", LifecycleConfiguration={"Rules": [
            {"ID": "a", "Status": "Enabled", "Filter": {}, "Transitions": [{"Days": 3, "StorageClass": "STANDARD_IA"}]}]})  # fmt: skip
    assert code(e) == "InvalidArgument" and "STANDARD_IA" in str(e.value)

    body = gzip.compress(os.urandom(200_000))  # above the 128 KiB transition minimum
    c.put_object(Bucket="weblogs", Key="logs/20260301/host-01_1.gz", Body=body)
    created = world.store.head("weblogs", "logs/20260301/host-01_1.gz").modified  # type: ignore[union-attr]
    cfg = world.lifecycle.all()
    report = runner.run(world.store, cfg, created + timedelta(days=30), buckets=["weblogs"])
    assert not report.errors
    head = c.head_object(Bucket="weblogs", Key="logs/20260301/host-01_1.gz")
    assert head["StorageClass"] == "GLACIER" and head["ContentLength"] == len(body)
    listed = c.list_objects_v2(Bucket="weblogs")["Contents"]
    assert [(o["Key"], o["StorageClass"]) for o in listed] == [("logs/20260301/host-01_1.gz", "GLACIER")]
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket="weblogs", Key="logs/20260301/host-01_1.gz")
    assert code(e) == "InvalidObjectState"
    c.restore_object(Bucket="weblogs", Key="logs/20260301/host-01_1.gz", RestoreRequest={"Days": 2})
    assert (
        'ongoing-request="false"'
        in c.head_object(Bucket="weblogs", Key="logs/20260301/host-01_1.gz")["Restore"]
    )
    assert c.get_object(Bucket="weblogs", Key="logs/20260301/host-01_1.gz")["Body"].read() == body
    c.delete_bucket_lifecycle(Bucket="weblogs")
    with pytest.raises(ClientError) as e:
        c.get_bucket_lifecycle_configuration(Bucket="weblogs")
    assert code(e) == "NoSuchLifecycleConfiguration"


def test_aws_cli_cp_ls_rm(world: World, tmp_path: Path) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="cli-logs")
    src = tmp_path / "access.log"
    src.write_bytes(os.urandom(9 * 1024 * 1024))  # above the CLI's 8 MiB multipart threshold
    env = {**os.environ, "AWS_ACCESS_KEY_ID": world.alice.access_key_id,
           "AWS_SECRET_ACCESS_KEY": world.alice.secret_access_key, "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    aws = [str(Path(sys.executable).with_name("aws")), "--endpoint-url", world.url, "s3"]

    def run(*args: str) -> str:
        out = subprocess.run([*aws, *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    run("cp", str(src), "s3://cli-logs/logs/20260301/access.log")
    assert "access.log" in run("ls", "s3://cli-logs/logs/20260301/")
    back = tmp_path / "back.log"
    run("cp", "s3://cli-logs/logs/20260301/access.log", str(back))
    assert back.read_bytes() == src.read_bytes()
    run("rm", "s3://cli-logs/logs/20260301/access.log")
    assert c.list_objects_v2(Bucket="cli-logs")["KeyCount"] == 0
    lc = json.dumps({"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 3}}]})
    out = subprocess.run([*aws[:-1], "s3api", "put-bucket-lifecycle-configuration", "--bucket", "cli-logs",
                          "--lifecycle-configuration", lc], env=env, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert world.lifecycle.get("cli-logs") is not None


def test_virtual_host_style_addressing(world: World) -> None:
    """BUCKET.localhost:PORT with the key as the path, signed by botocore's own SigV4 signer."""
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    s3(world, world.alice).create_bucket(Bucket="vhost-logs")
    port = world.url.rsplit(":", 1)[1]
    creds = Credentials(world.alice.access_key_id, world.alice.secret_access_key)

    def call(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        req = AWSRequest(method=method, url=f"http://vhost-logs.localhost:{port}{path}", data=body)
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        headers = {**dict(req.headers.items()), "Host": f"vhost-logs.localhost:{port}"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    assert call("PUT", "/logs/a.gz", b"hello")[0] == 200
    assert call("GET", "/logs/a.gz") == (200, b"hello")
    status, listing = call("GET", "/?list-type=2&prefix=logs%2F")
    assert status == 200, listing
    assert b"<Key>logs/a.gz</Key>" in listing
    assert world.store.get("vhost-logs", "logs/a.gz") == b"hello"


def test_the_hook_for_tailrace_up_serves_the_services_store(tmp_path: Path) -> None:
    from tailrace.api.s3.serve import start_s3_api
    from tailrace.config import load_settings
    from tailrace.services import build_services

    (tmp_path / "tailrace.toml").write_text("")
    settings = load_settings(
        environ={}, config_file=tmp_path / "tailrace.toml", overrides={"home": tmp_path / "home"}
    )
    services = build_services(settings)
    try:
        key = KeyStore(services.state, SystemClock()).create("carol")
        server = start_s3_api(services, port=0)
        try:
            c = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                             aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key)  # fmt: skip
            c.create_bucket(Bucket="up-logs")
            c.put_object(Bucket="up-logs", Key="k", Body=b"v")
            assert services.storage.read_bytes("s3://up-logs/k") == b"v"
            # One ownership for pipelines and the S3 API: a bucket a pipeline of dave's made is
            # dave's here, and the bucket carol made here is hers in dave's pipelines.
            services.storage.for_owner("dave").write_bytes("s3://dave-logs/x", b"d")
            with pytest.raises(ClientError) as e:
                c.get_object(Bucket="dave-logs", Key="x")
            assert code(e) == "AccessDenied"
            with pytest.raises(ClientError) as e:
                c.create_bucket(Bucket="dave-logs")
            assert code(e) == "BucketAlreadyExists"
            assert services.storage.buckets.owner_of("up-logs") == "carol"
            with pytest.raises(AccessDeniedError):
                services.storage.for_owner("dave").read_bytes("s3://up-logs/k")
        finally:
            server.stop()
    finally:
        services.close()
