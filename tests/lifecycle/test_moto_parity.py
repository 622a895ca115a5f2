"""The same `aws s3api put-bucket-lifecycle-configuration` (the unchanged AWS CLI) against moto's
S3 server and against tailrace's S3 endpoint: the same verdict, and the same error code when
refused, on every case moto itself checks, and on configurations both accept.

moto checks fewer rules than S3 (it accepts a Days of 0 for an expiration, duplicate IDs, a
transition after the expiration, unknown classes, ...); tailrace refuses those as S3 documents
(tests/lifecycle/test_rules.py), so they are not parity cases."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from .s3_helpers import World, s3


def _rule(**fields: Any) -> dict[str, Any]:
    return {"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, **fields}]}


def _bare(**fields: Any) -> dict[str, Any]:
    return {"Rules": [{"ID": "r", "Status": "Enabled", **fields}]}


CASES: dict[str, tuple[dict[str, Any], str | None]] = {
    # accepted by both
    "classic": (_rule(Transitions=[{"Days": 7, "StorageClass": "GLACIER"}], Expiration={"Days": 365}), None),
    "and-filter": (
        _bare(Filter={"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}]}}, Expiration={"Days": 5}),
        None,
    ),
    "abort-multipart": (_rule(AbortIncompleteMultipartUpload={"DaysAfterInitiation": 2}), None),
    "disabled": (_bare(Status="Disabled", Filter={}, Expiration={"Days": 1}), None),
    "legacy-prefix": (_bare(Prefix="a/", Expiration={"Days": 1}), None),
    "delete-marker-alone": (_rule(Expiration={"ExpiredObjectDeleteMarker": True}), None),
    "glacier-at-day-0": (_rule(Transitions=[{"Days": 0, "StorageClass": "GLACIER"}]), None),
    # refused by both, with S3's code
    "filter-and-prefix": (_bare(Prefix="a", Filter={"Prefix": "a"}, Expiration={"Days": 1}), "MalformedXML"),
    "neither-filter-nor-prefix": (_bare(Expiration={"Days": 1}), "MalformedXML"),
    "filter-with-two-conditions": (
        _bare(Filter={"Prefix": "a", "Tag": {"Key": "k", "Value": "v"}}, Expiration={"Days": 1}),
        "MalformedXML",
    ),
    "delete-marker-with-days": (
        _rule(Expiration={"Days": 3, "ExpiredObjectDeleteMarker": True}),
        "MalformedXML",
    ),
    "noncurrent-transition-without-class": (
        _rule(NoncurrentVersionTransitions=[{"NoncurrentDays": 30}]),
        "MalformedXML",
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws(url: str, key_id: str, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    exe = str(Path(sys.executable).with_name("aws"))
    return subprocess.run(
        [exe, "--endpoint-url", url, "s3api", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _verdict(client: Any, bucket: str, rules: dict[str, Any]) -> str | None:
    try:
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rules)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def test_same_verdicts_as_moto_through_boto3(world: World, moto_url: str) -> None:
    """Every case through botocore (the AWS CLI's own serializer), both servers side by side."""
    theirs_client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                                 aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    ours_client = s3(world, world.alice)
    got = {}
    for name, (rules, code) in CASES.items():
        bucket = f"parity-{name}"[:63]
        theirs_client.create_bucket(Bucket=bucket)
        ours_client.create_bucket(Bucket=bucket)
        got[name] = (_verdict(theirs_client, bucket, rules), _verdict(ours_client, bucket, rules))
        if code is None:
            stored = world.lifecycle.get(bucket)
            assert stored is not None and [r.id for r in stored.rules] == ["r"], name
    assert got == {name: (code, code) for name, (_, code) in CASES.items()}


@pytest.mark.parametrize("name", ["classic", "filter-and-prefix"])
def test_same_verdict_as_moto_through_the_aws_cli(
    world: World, moto_url: str, tmp_path: Path, name: str
) -> None:
    rules, code = CASES[name]
    bucket = f"cli-{name}"
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    put = (
        "put-bucket-lifecycle-configuration",
        "--bucket",
        bucket,
        "--lifecycle-configuration",
        f"file://{path}",
    )
    assert aws(moto_url, "testing", "testing", "create-bucket", "--bucket", bucket).returncode == 0
    theirs = aws(moto_url, "testing", "testing", *put)
    s3(world, world.alice).create_bucket(Bucket=bucket)
    ours = aws(world.url, world.alice.access_key_id, world.alice.secret_access_key, *put)
    assert (theirs.returncode == 0) == (code is None) == (ours.returncode == 0), (theirs.stderr, ours.stderr)
    if code is not None:
        assert f"({code})" in theirs.stderr and f"({code})" in ours.stderr, (theirs.stderr, ours.stderr)
        assert "Traceback" not in ours.stderr
