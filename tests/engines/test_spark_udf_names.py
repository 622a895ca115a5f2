"""The Spark engine names its Hive UDFs by module and function as strings (so that a statement
calling none imports nothing): each must resolve to a function of the DuckDB engine."""

from __future__ import annotations

import pytest

from tailrace.engines.spark import udfs


@pytest.mark.parametrize("name", sorted(udfs.NAMES))
def test_every_udf_resolves_to_a_function(name: str) -> None:
    fn, returns, _ = udfs._resolve(name)
    assert callable(fn) and fn.__module__.startswith("tailrace.engines.hive.") and returns
