"""Plain HTTP requests for the tests that must send what boto3 never would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def send(url: str, *, method: str = "POST", body: bytes = b"", headers: dict[str, str] | None = None):
    req = urllib.request.Request(
        url, data=body if method != "GET" else None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def signed_headers(
    url: str,
    body: bytes,
    key_id: str,
    secret: str,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    service: str = "datapipeline",
) -> dict[str, str]:
    """Headers of the request as botocore's own signer signs it (tests only). A request with a
    body gets a Content-Type (urllib would add an unsigned one, which the server refuses)."""
    headers = dict(headers or {})
    if method != "GET" and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret), service, "us-east-1").add_auth(req)
    return dict(req.headers.items())


def call(
    url: str,
    target: str | None,
    body: Any,
    key=None,
    *,
    raw: bytes | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any] | bytes]:
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", **(extra or {})}
    if target is not None:
        headers["X-Amz-Target"] = target
    if key is not None:
        headers = signed_headers(url + "/", data, key.access_key_id, key.secret_access_key, headers=headers)
    status, _, payload = send(url + "/", body=data, headers=headers)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload
