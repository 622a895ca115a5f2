"""Hive-dialect scripts on DuckDB (`tailrace hive`, HiveActivity).

engine = HiveEngine(storage, SqlMetastore(sql_engine), work_dir=tmp)
result = engine.run_script(text, {"DATE": "20121221"}, source="whatislog.q")
"""

from __future__ import annotations

from tailrace.engines.hive.engine import HiveEngine
from tailrace.engines.metastore import Metastore, PartitionSpec, TableSpec
from tailrace.engines.result import HiveError, Malformed, ScriptInterrupted, ScriptResult, StatementResult

__all__ = [
    "HiveEngine",
    "HiveError",
    "Malformed",
    "Metastore",
    "PartitionSpec",
    "ScriptInterrupted",
    "ScriptResult",
    "StatementResult",
    "TableSpec",
]
