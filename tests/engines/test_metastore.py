"""The Metastore contract on every backend: memory, SQLite, PostgreSQL (when it is up)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from tailrace.engines.metastore import MemoryMetastore, PartitionSpec, SqlMetastore, TableSpec
from tailrace.errors import ConflictError
from tailrace.state.engine import create_engine
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryMetastore()
    elif request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/meta.db")
        yield SqlMetastore(engine)
        engine.dispose()
    else:
        reason = postgres_available(PG_URL)
        if reason:
            pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
        with temporary_schema(PG_URL) as url:
            engine = create_engine(url)
            yield SqlMetastore(engine)
            engine.dispose()


def spec(name="fluentLog", **kw):
    base = dict(
        name=name,
        columns=[("dt", "string"), ("Size", "BIGINT")],
        location="s3://memorycraft-log/logs/20121221",
        field_delimiter="\t",
    )
    return TableSpec(**{**base, **kw})


def test_create_get_and_case_insensitive_names(store):
    store.create_table(spec())
    got = store.get_table("DEFAULT", "FLUENTLOG")
    assert got == spec()
    assert got.name == "fluentlog" and got.columns == [("dt", "string"), ("size", "bigint")]
    assert store.get_table("default", "other") is None
    with pytest.raises(ConflictError):
        store.create_table(spec(location="elsewhere"))


def test_replace_list_and_drop(store):
    store.create_table(spec("b"))
    store.create_table(spec("a", database="logs"))
    store.replace_table(spec("b", location="s3://x/y", partitioned_by=[("dt", "string")]))
    store.replace_table(spec("c"))
    assert [(t.database, t.name) for t in store.list_tables()] == [
        ("default", "b"),
        ("default", "c"),
        ("logs", "a"),
    ]
    assert [t.name for t in store.list_tables("logs")] == ["a"]
    assert store.get_table("default", "b").location == "s3://x/y"
    assert store.drop_table("default", "b") is True
    assert store.drop_table("default", "b") is False
    assert store.get_table("default", "b") is None


def test_partitions(store):
    store.create_table(spec(partitioned_by=[("dt", "string"), ("h", "int")]))
    p1 = PartitionSpec(values=(("dt", "20121221"), ("h", "4")), location="s3://b/t/dt=20121221/h=4")
    p0 = PartitionSpec(values=(("dt", "20121220"), ("h", "23")), location="s3://elsewhere")
    assert store.add_partition("default", "fluentlog", p1) is True
    assert store.add_partition("default", "FluentLog", p0) is True
    assert store.add_partition("default", "fluentlog", p1) is False
    assert store.list_partitions("default", "fluentlog") == [p0, p1]
    assert store.drop_partition("default", "fluentlog", p0.values) is True
    assert store.drop_partition("default", "fluentlog", p0.values) is False
    store.drop_table("default", "fluentlog")
    assert store.list_partitions("default", "fluentlog") == []


def test_sql_tables_are_created_idempotently_with_the_hive_prefix(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    SqlMetastore(engine).create_table(spec())
    again = SqlMetastore(engine)
    assert again.get_table("default", "fluentlog") is not None
    names = sa.inspect(engine).get_table_names()
    assert {"hive_tables", "hive_partitions"} <= set(names)
    engine.dispose()


@pytest.mark.postgres
def test_workers_starting_together_on_postgresql_create_the_tables_once():
    """Six processes' metastores opened at the same moment on a fresh schema (workers of
    `tailrace up` starting together): PostgreSQL's CREATE TABLE races (DuplicateTable, a unique
    violation in pg_type) unless one creates at a time. Ten rounds; none may fail."""
    import threading

    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    errors: list[str] = []
    for _ in range(10):
        with temporary_schema(PG_URL) as url:
            engines = [create_engine(url) for _ in range(6)]

            def open_one(engine: sa.Engine) -> None:
                try:
                    SqlMetastore(engine)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

            threads = [threading.Thread(target=open_one, args=(e,)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for e in engines:
                e.dispose()
    assert errors == []
