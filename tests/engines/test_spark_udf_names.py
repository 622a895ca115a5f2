"""The Spark engine knows its Hive UDFs by name before it imports them (NAMES, so a statement that
calls none imports nothing): the names must be exactly the table's, or a UDF is never registered."""

from __future__ import annotations

from tailrace.engines.spark import udfs


def test_names_are_the_tables_keys() -> None:
    assert frozenset(udfs._table()) == udfs.NAMES
