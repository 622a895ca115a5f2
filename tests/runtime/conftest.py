"""Fixtures of the database node tests: the real MariaDB and PostgreSQL, a moto DynamoDB server,
and a one-shot runner (the `tailrace run` path) with a tailrace.toml of the test's own."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dbhelpers import HEAD, MYSQL_PASSWORD, MYSQL_USER

from tailrace.config import load_settings
from tailrace.definition import from_file_dict
from tailrace.runtime.local import LocalRunner, RunReport
from tailrace.services import build_services


@pytest.fixture
def mysql() -> Iterator[Any]:
    pymysql = pytest.importorskip("pymysql")
    try:
        conn = pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database="test", autocommit=True
        )
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB at 127.0.0.1:3306 is not reachable ({exc})")
    cur = conn.cursor()
    for host in ("localhost", "127.0.0.1", "%"):  # a user with a password, as definitions have
        cur.execute(f"CREATE USER IF NOT EXISTS '{MYSQL_USER}'@'{host}' IDENTIFIED BY '{MYSQL_PASSWORD}'")
        cur.execute(f"GRANT ALL ON test.* TO '{MYSQL_USER}'@'{host}'")
    yield conn
    conn.close()


@pytest.fixture
def pg() -> Iterator[Any]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc})")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def dynamodb_url() -> Iterator[str]:
    """moto's server over HTTP: real boto3 requests to a real listening socket."""
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


Runner = Callable[..., RunReport]


@pytest.fixture
def run_objects(home: Path, tmp_path: Path) -> Runner:
    """Run objects (after a cron Default and a one-day Schedule) up to 2012-12-25 as `tailrace run`
    does; `config` is the text of the run's tailrace.toml."""

    def run(
        objects: list[dict[str, Any]],
        *,
        config: str = "",
        until: str = "2012-12-25T00:00:00",
        databases: Any = None,
    ) -> RunReport:
        (tmp_path / "tailrace.toml").write_text(config)
        services = build_services(load_settings(config_file=tmp_path / "tailrace.toml"))
        runner = LocalRunner(
            storage=services.storage,
            home=services.settings.home,
            engines=services.engines,
            hive_engine=services.settings.hive_engine,
            databases=databases or services.database_access,
        )
        from tailrace.clock import parse_dp

        defn = from_file_dict({"objects": HEAD + objects})
        return runner.run(defn, until=parse_dp(until))

    return run
