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


# --- Spark: one standalone cluster (master + 2 workers, separate processes) for the session ----


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    pytest.importorskip("pyspark")
    from tailrace.engines.spark.standalone import StandaloneCluster

    # Two cores a worker: the session's executors take one each (spark.cores.max below), so an
    # application started by spark-submit (EmrActivity) still finds cores.
    cluster = StandaloneCluster(workers=2, cores=2, memory="2g", work_dir=tmp_path_factory.mktemp("spark"))
    cluster.start()
    try:
        yield cluster
    finally:
        from tailrace.engines.spark import session as sessions

        sessions.shutdown()
        cluster.stop()


@pytest.fixture(scope="session")
def spark_options(spark_cluster, tmp_path_factory: pytest.TempPathFactory) -> object:
    from tailrace.engines.spark.session import SparkOptions

    return SparkOptions(
        master=spark_cluster.master_url,  # type: ignore[attr-defined]
        staging_dir=tmp_path_factory.mktemp("spark-staging"),
        conf=(
            ("spark.cores.max", "2"),
            ("spark.executor.cores", "1"),
            ("spark.executor.memory", "512m"),
            ("spark.sql.shuffle.partitions", "4"),
        ),
    )


@pytest.fixture(scope="session")
def spark_session(spark_options) -> Iterator[object]:
    """The process's long-lived session on the test cluster (started once, shared by every
    Spark test, as a worker process shares it between attempts)."""
    from tailrace.engines.spark import session as sessions

    shared, _ = sessions.acquire(spark_options)
    sessions.release(shared)
    yield shared


@pytest.fixture
def spark_hive(data_home: Path, metastore: SqlMetastore, spark_session, spark_options) -> Iterator[object]:
    from tailrace.engines.spark.engine import open_hive

    engine = open_hive(Storage(home=data_home), metastore, spark_session, spark_options)
    yield engine
    engine.close()
