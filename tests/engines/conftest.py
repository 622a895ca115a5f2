"""Fixtures for the Hive engine tests: a data directory, a SQLite metastore, input writers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tailrace.engines.hive import HiveEngine
from tailrace.engines.metastore import SqlMetastore
from tailrace.storage import Storage


@pytest.fixture
def data_home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def metastore(data_home: Path) -> Iterator[SqlMetastore]:
    engine = sa.create_engine(f"sqlite:///{data_home / 'tailrace.db'}")
    yield SqlMetastore(engine)
    engine.dispose()


@pytest.fixture
def hive(data_home: Path, metastore: SqlMetastore) -> Iterator[HiveEngine]:
    engine = HiveEngine(Storage(home=data_home), metastore, work_dir=data_home / "tmp" / "work", threads=2)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's S3 server over HTTP (real boto3 talks to it)."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
