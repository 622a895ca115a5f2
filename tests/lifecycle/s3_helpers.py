"""The S3 endpoint for tests: a TieredLocalStore served on a free port, two owners' keys, and
unchanged boto3 clients (path-style) for them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tailrace.api.keys import KeyStore
from tailrace.api.s3.app import S3Api
from tailrace.api.s3.buckets import Buckets
from tailrace.api.server import ApiServer
from tailrace.clock import SystemClock
from tailrace.lifecycle.configs import LifecycleConfigs
from tailrace.state import AccessKey, open_store
from tailrace.storage.tiered import TieredLocalStore


@dataclass
class World:
    url: str
    store: TieredLocalStore
    keys: KeyStore
    lifecycle: LifecycleConfigs
    alice: AccessKey
    bob: AccessKey
    home: Path


def serve_world(tmp_path: Path) -> Iterator[World]:
    state = open_store(f"sqlite:///{tmp_path}/state.db")
    keys = KeyStore(state, SystemClock(), cache_seconds=0)
    home = tmp_path / "home"
    store = TieredLocalStore(home / "s3")
    lifecycle = LifecycleConfigs(state.engine)

    def owner_for(kid: str) -> str | None:
        k = keys.lookup(kid)
        return k.owner if k else None

    app = S3Api(
        store=store,
        buckets=Buckets(state.engine),
        lifecycle=lifecycle,
        secret_for=keys.secret_for,
        owner_for=owner_for,
    )
    with ApiServer(app) as srv:
        yield World(srv.url, store, keys, lifecycle, keys.create("alice"), keys.create("bob"), home)
    state.close()
    state.engine.dispose()


def s3(world: World, key: AccessKey, **cfg: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=world.url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **cfg),
    )


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


class ClaimingSigner(S3SigV4Auth):
    """botocore's S3 signer, signing the X-Amz-Content-SHA256 it is given (it would hash the
    body): for requests boto3 does not send (streaming modes, a wrong payload hash)."""

    def __init__(self, credentials: Credentials, claimed: str) -> None:
        super().__init__(credentials, "s3", "us-east-1")
        self.claimed = claimed

    def payload(self, request: AWSRequest) -> str:
        return self.claimed


def send(world: World, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One raw HTTP request to the endpoint (for requests boto3 does not make): status and body."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(world.url + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as ok:
            return ok.status, ok.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
