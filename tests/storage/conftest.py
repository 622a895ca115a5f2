"""Object-store backends for the contract suite: a local directory, and S3 through moto's
server over HTTP with real boto3 (started once per session on a free port)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailrace.storage.abc import ObjectStore
from tailrace.storage.local import LocalStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_store(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    from tailrace.storage.s3 import S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return S3Store(endpoint_url=moto_endpoint, access_key_id="testing", secret_access_key="testing")


@pytest.fixture(params=["local", "tiered", "s3"])
def store_and_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ObjectStore, str]:
    """(store, bucket): a fresh bucket name per test; S3 buckets appear on first put."""
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    if request.param == "local":
        return LocalStore(tmp_path / "objects"), bucket
    if request.param == "tiered":
        from tailrace.storage.tiered import TieredLocalStore

        return TieredLocalStore(tmp_path / "objects"), bucket
    store = request.getfixturevalue("s3_store")
    store.client.create_bucket(Bucket=bucket)
    return store, bucket
