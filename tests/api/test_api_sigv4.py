"""SigV4 verification against botocore's signer, and the refusals a client can meet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from api_helpers import client_for
from rawhttp import signed_headers

from tailrace.api import sigv4
from tailrace.api.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

SECRETS = {"AKIDTEST": "s3cr3t/with+odd=chars"}


def _verify(
    url: str, headers: dict[str, str], body: bytes, *, now: datetime | None = None, method: str = "POST"
):
    parts = urlsplit(url)
    return sigv4.verify(
        method=method,
        raw_path=parts.path or "/",
        raw_query=parts.query,
        headers=[*headers.items(), ("Host", parts.netloc)],
        body=body,
        secret_for=SECRETS.get,
        now=now or datetime.now(UTC),
        service="datapipeline",
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8040/",
        "http://127.0.0.1:8040/api/v1/pipelines/df-X/attempts/%40Hello_2026-01-03T00%3A00%3A00_Attempt%3D1/log",
        "http://localhost/api/v1/events?limit=10&after=5&pipelineId=df-A%20B",
        "http://localhost/a/./b/../c?x=%2F&x=1&empty=",
    ],
)
def test_requests_signed_by_botocore_verify(url):
    body = b'{"pipelineIds": ["df-1"]}'
    headers = signed_headers(url, body, "AKIDTEST", SECRETS["AKIDTEST"], headers={"X-Amz-Target": "x"})
    auth = _verify(url, headers, body)
    assert auth.access_key_id == "AKIDTEST" and auth.service == "datapipeline"
    with pytest.raises(InvalidSignature, match="signature mismatch"):
        _verify(url, headers, body + b" ")
    with pytest.raises(InvalidSignature):
        _verify(url, {**headers, "X-Amz-Target": "y"}, body)


def test_our_signer_verifies():
    now = datetime.now(UTC)
    body = b"{}"
    headers = sigv4.sign(
        method="POST",
        host="h:1",
        raw_path="/",
        raw_query="",
        headers={"X-Amz-Target": "t"},
        body=body,
        access_key_id="AKIDTEST",
        secret=SECRETS["AKIDTEST"],
        region="eu-west-1",
        service="datapipeline",
        now=now,
    )
    assert (
        _verify("http://h:1/", {k: v for k, v in headers.items() if k != "Host"}, body).region == "eu-west-1"
    )


def test_refusals_name_the_problem():
    url, body = "http://h/", b"{}"
    good = signed_headers(url, body, "AKIDTEST", SECRETS["AKIDTEST"])
    with pytest.raises(MissingAuthenticationToken):
        _verify(url, {}, body)
    with pytest.raises(InvalidSignature, match="more than 15 minutes"):
        _verify(url, good, body, now=datetime.now(UTC) + timedelta(minutes=16))
    _verify(url, good, body, now=datetime.now(UTC) + timedelta(minutes=14))
    with pytest.raises(UnrecognizedClient, match="AKIDOTHER"):
        _verify(url, signed_headers(url, body, "AKIDOTHER", "x"), body)
    with pytest.raises(InvalidSignature, match="service 's3'"):
        _verify(url, signed_headers(url, body, "AKIDTEST", SECRETS["AKIDTEST"], service="s3"), body)
    with pytest.raises(IncompleteSignature, match="AWS4-HMAC-SHA256"):
        _verify(url, {**good, "Authorization": "AWS AKIDTEST:abc"}, body)
    with pytest.raises(IncompleteSignature, match="Credential="):
        _verify(url, {**good, "Authorization": "AWS4-HMAC-SHA256 Credential=x"}, body)
    no_date = {k: v for k, v in good.items() if k != "X-Amz-Date"}
    with pytest.raises(IncompleteSignature, match="x-amz-date"):
        _verify(url, no_date, body)
    with pytest.raises(IncompleteSignature, match="x-amz-content-sha256 must be among the SignedHeaders"):
        _verify(url, {**good, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, body)
    unsigned_payload = signed_headers(
        url, body, "AKIDTEST", SECRETS["AKIDTEST"], headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    with pytest.raises(IncompleteSignature, match="64 digits"):
        _verify(url, unsigned_payload, body)


def test_insecure_no_auth_accepts_anyone_and_sees_every_owner(store, keys, service):
    from rawhttp import call

    from tailrace.api.app import create_app
    from tailrace.api.server import ApiServer
    from tailrace.clock import SystemClock

    alice = keys.create("alice")
    app = create_app(
        service=service, store=store, keys=None, clock=SystemClock(), insecure_no_auth=True, poll_wait=0
    )
    with ApiServer(app) as srv:
        mine = client_for(srv.url, alice).create_pipeline(name="a", uniqueId="a")["pipelineId"]
        status, body = call(srv.url, "DataPipeline.ListPipelines", {})  # unsigned
        assert status == 200 and [p["id"] for p in body["pipelineIdList"]] == [mine]
    with store.transaction(readonly=True) as tx:
        assert tx.pipelines.get(mine).owner == "default"  # nobody is checked, so new pipelines are default's
