"""Hive functions Spark lacks, or answers otherwise, as Spark Python UDFs over the DuckDB
engine's plain-Python implementations (engines/hive/xpath.py, udfs.py, udfs_stats.py,
udfs_json.py): the same code gives the same answer on both engines.

The functions are pickled by value (with the module-level helpers they call), so an executor
needs a Python of the driver's minor version (PYSPARK_PYTHON / spark.pyspark.python) but not
tailrace itself. A statement registers only the UDFs it calls; a query that calls none starts no
Python worker.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

GRAMS = "array<struct<ngram:array<string>,estfrequency:double>>"
BINS = "array<struct<x:double,y:double>>"


# name -> (module under tailrace.engines.hive, function, Spark return type, errors give NULL).
# Strings, so that knowing the names imports nothing: a query that calls none loads none.
_SPECS: dict[str, tuple[str, str, str, bool]] = {
    "__hive_xpath": ("xpath", "xpath", "array<string>", False),
    "__hive_xpath_string": ("xpath", "xpath_string", "string", False),
    "__hive_xpath_boolean": ("xpath", "xpath_boolean", "boolean", False),
    "__hive_xpath_int": ("xpath", "xpath_int", "int", False),
    "__hive_xpath_long": ("xpath", "xpath_long", "bigint", False),
    "__hive_xpath_short": ("xpath", "xpath_short", "smallint", False),
    "__hive_xpath_double": ("xpath", "xpath_double", "double", False),
    "__hive_xpath_float": ("xpath", "xpath_double", "float", False),
    "__hive_ngrams": ("udfs_stats", "ngrams", GRAMS, False),
    "__hive_context_ngrams": ("udfs_stats", "context_ngrams", GRAMS, False),
    "__hive_histogram_numeric": ("udfs_stats", "histogram_numeric", BINS, False),
    "__hive_percentile_approx": ("udfs_stats", "percentile_approx", "array<double>", False),
    "__hive_json_path": ("udfs_json", "get_json_object", "string", True),
    "__hive_sentences": ("udfs", "sentences", "array<array<string>>", True),
    "__hive_string_hash": ("udfs", "java_string_hash", "bigint", True),
    "__hive_printf": ("udfs_format", "printf", "string", True),
    "__hive_mask": ("udfs", "mask", "string", True),
    "__hive_mask_first_n": ("udfs", "mask_first_n", "string", True),
    "__hive_mask_last_n": ("udfs", "mask_last_n", "string", True),
    "__hive_mask_show_first_n": ("udfs", "mask_show_first_n", "string", True),
    "__hive_mask_show_last_n": ("udfs", "mask_show_last_n", "string", True),
}
NAMES = frozenset(_SPECS)
# Modules the functions above call into, shipped by value with them.
_HELPERS = ("javatime", "serde")

_CALL = re.compile(r"\b(__hive_\w+)\s*\(", re.I)


def _null_safe(fn: Callable[..., Any], quiet: bool) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        if not quiet:
            return fn(*args)
        try:
            return fn(*args)
        except (ValueError, TypeError, OverflowError, IndexError, RecursionError, re.error):
            return None

    return call


_by_value = False


def _ship_by_value() -> None:
    global _by_value
    if _by_value:
        return
    from pyspark import cloudpickle

    modules = {spec[0] for spec in _SPECS.values()} | set(_HELPERS)
    for name in [*(f"tailrace.engines.hive.{m}" for m in sorted(modules)), __name__]:
        cloudpickle.register_pickle_by_value(importlib.import_module(name))
    _by_value = True


def _resolve(name: str) -> tuple[Callable[..., Any], str, bool]:
    module, attr, returns, quiet = _SPECS[name]
    return getattr(importlib.import_module(f"tailrace.engines.hive.{module}"), attr), returns, quiet


def register_used(session: Any, sql: str, done: set[str]) -> None:
    """Register on `session` the UDFs that `sql` calls and `done` does not hold yet."""
    wanted = {m.group(1).lower() for m in _CALL.finditer(sql)} & NAMES
    wanted -= done
    if not wanted:
        return
    from pyspark.sql.functions import udf

    _ship_by_value()
    for name in sorted(wanted):
        fn, returns, quiet = _resolve(name)
        session.udf.register(name, udf(_null_safe(fn, quiet), returns, useArrow=False))
        done.add(name)
