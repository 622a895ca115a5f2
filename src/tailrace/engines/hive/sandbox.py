"""An owner's Hive script on DuckDB: no files but its own, no environment, no settings changes."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from sqlglot import exp

from tailrace.engines.hive import serde
from tailrace.engines.hive.locate import Where
from tailrace.storage import OwnerStorage, Storage


def readable_dirs(storage: Storage, work_dir: Path) -> tuple[Path, ...]:
    """What an owner's DuckDB may read directly: its work directory, its warehouse, the allowed
    local directories, and in the embedded store the buckets it owns or was granted when the
    script started (files of buckets it first uses later are copied to the work directory)."""
    dirs = [work_dir, storage.warehouse, *storage.allowed_local_dirs]
    if storage.embedded_s3 and isinstance(storage, OwnerStorage):
        dirs += [storage.home / "s3" / bucket for bucket in storage.reachable_buckets()]
    return tuple(Path(d).resolve() for d in dirs)


def lock_down(con: duckdb.DuckDBPyConnection, dirs: tuple[Path, ...]) -> None:
    """DuckDB may touch only `dirs` (see readable_dirs); the configuration is then locked so no
    statement can widen it. Functions and statements that name files are refused before DuckDB
    sees them (refuse_file_functions, refuse_engine_statement)."""
    listed = ", ".join(serde.sql_str(str(d) + "/") for d in dirs)
    con.execute(f"SET allowed_directories = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


_FILE_PREFIXES = ("read_", "parquet_", "sniff_", "duckdb_", "pragma_", "iceberg_", "delta_", "json_execute")
_FILE_FUNCTIONS = frozenset(
    {"glob", "getenv", "query", "query_table", "current_setting", "which_secret", "load_aws_credentials"}
)


# Hive constructs that reach outside the tables: EMR ran TRANSFORM scripts on its nodes; here they
# would run as the service's user (DuckDB does not parse them, Spark runs them).
REFUSED_NODES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.QueryTransform, "TRANSFORM ... USING runs programs on the cluster; it is not supported"),
    (exp.CurrentUser, "current_user() is not supported by tailrace hive: there is no Hive user"),
)


def refuse_file_functions(where: Where, tree: exp.Expr) -> None:
    """Hive has no functions that read files or the environment; DuckDB does (read_text, glob,
    getenv, query...). A script that names one is refused, whatever DuckDB would allow; so is
    TRANSFORM ... USING (REFUSED_NODES)."""
    for kind, why in REFUSED_NODES:
        found = tree.find(kind)
        if found is not None:
            raise where.error(why, found)
    for node in tree.find_all(exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name.startswith(_FILE_PREFIXES) or name in _FILE_FUNCTIONS:
            raise where.error(
                f"function {name}() is not available: scripts read data through tables only", node
            )
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Literal) or "/" in table.name:
            raise where.error(
                f"{table.name!r} is not a table name: scripts read files through tables (CREATE "
                "EXTERNAL TABLE ... LOCATION 's3://...')",
                table,
            )


_DUCKDB_ONLY = re.compile(
    r"^\s*(ATTACH|DETACH|COPY|EXPORT|IMPORT|PRAGMA|INSTALL|FORCE\s+INSTALL|LOAD(?!\s+DATA\b)|CALL|CHECKPOINT|"
    r"FORCE\s+CHECKPOINT|VACUUM|CREATE\s+(OR\s+REPLACE\s+)?(PERSISTENT\s+|TEMP\w*\s+)?SECRET|RESET)\b",
    re.IGNORECASE,
)


_HIVE_CLI = re.compile(
    r"^\s*(!|dfs\b|source\b|compile\b|crypto\b|reload\b|(?:list|delete)\s+(?:jar|file|archive)s?\b)",
    re.IGNORECASE,
)
_CREATE_FUNCTION = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?(TEMPORARY\s+)?FUNCTION\b", re.I)


def refuse_engine_statement(where: Where, text: str) -> None:
    """DuckDB's own statements (files, databases, extensions, settings) are not Hive: refused
    by name, before any parsing, whoever runs the script; so are the Hive CLI's commands (shell,
    HDFS, other script files) and functions from jars."""
    cli = _HIVE_CLI.match(text)
    if cli:
        raise where.error(
            f"the Hive CLI command {cli.group(1).strip()!r} is not supported by tailrace hive (scripts "
            "run no shell commands, dfs commands or other script files)"
        )
    if _CREATE_FUNCTION.match(text):
        raise where.error(
            "CREATE FUNCTION is not supported by tailrace hive (scripts load no jars or classes; "
            "Hive's built-in functions are available)"
        )
    m = _DUCKDB_ONLY.match(text)
    if m:
        kind = " ".join(m.group(1).upper().split())
        raise where.error(
            f"{kind} statements are not supported by tailrace hive (scripts cannot attach databases, "
            "copy or export to files, load extensions or change the engine's settings)"
        )
