"""SQL work on JdbcDatabase connections: SqlActivity, and CopyActivity to or from SqlDataNode.

JDBC URLs are mapped to Python drivers: `jdbc:postgresql://host:port/db` (psycopg),
`jdbc:sqlite:/path` (sqlite3) and `jdbc:duckdb:/path` (duckdb). Scripts keep JDBC's `?`
placeholders; values come from `scriptArgument` (SqlActivity) or the copied records.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailrace.errors import Location, StorageError
from tailrace.runtime.activities.common import location, script_text
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.staging import ActivityError, NodeData, require_exists
from tailrace.storage import OwnerStorage

_PG = re.compile(
    r"^jdbc:postgresql://(?P<host>[^/:?]+)(?::(?P<port>\d+))?/(?P<db>[^?]+)(?:\?(?P<query>.*))?$"
)


@dataclass(frozen=True)
class Database:
    kind: str  # postgresql, sqlite, duckdb
    target: str
    user: str | None
    password: str | None
    object_id: str
    sandboxed: bool = False
    """An owner's attempt on the service: a DuckDB file is opened with external access off."""


def _check_local_database(ctx: AttemptContext, db_id: str, target: str) -> None:
    """A SQLite or DuckDB file is a local path like any other: on the service it must lie under
    allowed_local_dirs (else `jdbc:sqlite:$TAILRACE_HOME/tailrace.db` would read every key)."""
    if target in ("", ":memory:") or not isinstance(ctx.storage, OwnerStorage):
        return
    try:
        ctx.storage.resolve(target)
    except StorageError as exc:
        raise ActivityError(f"connectionString: {exc}", Location(object_id=db_id, field="connectionString"))


def database_of(ctx: AttemptContext, db_id: str) -> Database:
    db = ctx.resolved.objects[db_id]
    if db.type != "JdbcDatabase":
        raise ActivityError(
            f"{db.type} '{db_id}' cannot be reached from here; use a JdbcDatabase with a jdbc:postgresql:, "
            "jdbc:sqlite: or jdbc:duckdb: connectionString",
            Location(object_id=db_id, field="type"),
        )
    url = ctx.field("connectionString", object_id=db_id) or ""
    user = ctx.field("username", object_id=db_id)
    password = ctx.field("*password", object_id=db_id)
    if url.startswith("jdbc:postgresql:"):
        if not _PG.match(url):
            raise ActivityError(
                f"expected jdbc:postgresql://host[:port]/database; found {url!r}",
                Location(object_id=db_id, field="connectionString"),
            )
        return Database("postgresql", url, user, password, db_id)
    for kind in ("sqlite", "duckdb"):
        if url.startswith(f"jdbc:{kind}:"):
            target = url[len(f"jdbc:{kind}:") :]
            _check_local_database(ctx, db_id, target)
            return Database(
                kind, target, user, password, db_id, sandboxed=isinstance(ctx.storage, OwnerStorage)
            )
    raise ActivityError(
        f"unsupported connectionString {url!r}: jdbc:postgresql:, jdbc:sqlite: and jdbc:duckdb: run here",
        Location(object_id=db_id, field="connectionString"),
    )


@contextlib.contextmanager
def connect(db: Database) -> Iterator[Any]:
    """A DB-API connection that commits on success and rolls back on error."""
    if db.kind == "postgresql":
        import psycopg

        m = _PG.match(db.target)
        assert m is not None
        conn: Any = psycopg.connect(
            host=m["host"],
            port=int(m["port"] or 5432),
            dbname=m["db"],
            user=db.user,
            password=db.password or None,
        )
    elif db.kind == "sqlite":
        conn = sqlite3.connect(db.target)
    else:
        import duckdb

        config: dict[str, Any] = (
            {"enable_external_access": False, "lock_configuration": True} if db.sandboxed else {}
        )
        conn = duckdb.connect(db.target, config=config)
    try:
        yield conn
        conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise
    finally:
        conn.close()


def _params(db: Database, sql: str) -> str:
    """JDBC `?` placeholders in the driver's style (psycopg wants %s; % itself must double)."""
    if db.kind != "postgresql":
        return sql
    out, quote = [], ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        else:
            out.append("%s" if ch == "?" else "%%" if ch == "%" else ch)
    return "".join(out)


def run_statements(db: Database, conn: Any, script: str, args: Sequence[str]) -> int:
    """Run a script; with arguments it is one statement whose `?`s they fill."""
    cur = conn.cursor()
    if args:
        cur.execute(_params(db, script), list(args))
        return 1
    if db.kind == "sqlite":
        conn.executescript(script)
    else:
        cur.execute(script)
    return 1


def register(registry: ActivityRegistry) -> None:
    registry.register("SqlActivity", run_sql)


def run_sql(ctx: AttemptContext) -> AttemptOutcome:
    comp = ctx.component
    db_id = comp.ref("database")
    if db_id is None:
        raise ActivityError("needs 'database'", location(ctx, "database"))
    db = database_of(ctx, db_id)
    # A script in the object store is not expression-evaluated (as in the service).
    script, source = script_text(ctx, "script")
    args = ctx.fields("scriptArgument")
    ctx.log.write(f"running {source} on {db.kind} ({db.object_id})\n")
    try:
        with connect(db) as conn:
            run_statements(db, conn, script, args)
    except ActivityError:
        raise
    except Exception as exc:
        raise ActivityError(f"{type(exc).__name__}: {exc}".strip(), location(ctx, "script"))
    return AttemptOutcome(status="FINISHED")


# --- CopyActivity with SqlDataNode ------------------------------------------------------------


def sql_node(ctx: AttemptContext, node_id: str) -> tuple[Database, str]:
    table = ctx.field("table", object_id=node_id)
    db_id = ctx.resolved.objects[node_id].ref("database")
    if not table or not db_id:
        raise ActivityError(
            "a SqlDataNode needs 'table' and 'database'", Location(object_id=node_id, field="table")
        )
    return database_of(ctx, db_id), table


def _format_value(value: Any, separator: str) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace(separator, "\\" + separator)


def copy_sql_to_store(ctx: AttemptContext, src_id: str, dst: NodeData, staging: Path) -> int:
    db, table = sql_node(ctx, src_id)
    query = ctx.field("selectQuery", object_id=src_id) or f"SELECT * FROM {table}"
    out = staging / "000000_0"
    count = 0
    with connect(db) as conn, out.open("w", encoding="utf-8", newline="") as fh:
        cur = conn.cursor()
        cur.execute(query)
        # CopyActivity writes records unquoted, separators and backslashes escaped with '\'.
        for row in cur.fetchall():
            fields = [_format_value(v, dst.separator) for v in row]
            fh.write(dst.separator.join(fields) + "\n")
            count += 1
    return count


def split_record(line: str, separator: str) -> list[str | None]:
    """Split on unescaped separators; `\\N` alone is NULL, `\\x` is x (CopyActivity's rules)."""
    fields: list[str | None] = []
    current: list[str] = []
    raw_field: list[str] = []
    chars = iter(line)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            current.append(nxt)
            raw_field.append(ch + nxt)
        elif ch == separator:
            fields.append(None if "".join(raw_field) == "\\N" else "".join(current))
            current, raw_field = [], []
        else:
            current.append(ch)
            raw_field.append(ch)
    fields.append(None if "".join(raw_field) == "\\N" else "".join(current))
    return fields


def copy_store_to_sql(ctx: AttemptContext, src: NodeData, dst_id: str) -> int:
    require_exists(ctx.storage, src, role="input")
    db, table = sql_node(ctx, dst_id)
    insert = ctx.field("insertQuery", object_id=dst_id)
    create = ctx.field("createTableSql", object_id=dst_id)
    rows: list[list[str | None]] = []
    for raw in ctx.storage.iter_lines(src.uri):
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            continue
        rows.append(split_record(line, src.separator))
    with connect(db) as conn:
        cur = conn.cursor()
        if create:
            try:
                cur.execute(f"SELECT 1 FROM {table} WHERE 1 = 0")
            except Exception:
                conn.rollback()
                cur = conn.cursor()
                cur.execute(create)
        for row in rows:
            sql = insert or f"INSERT INTO {table} VALUES ({', '.join('?' for _ in row)})"
            cur.execute(_params(db, sql), row)
    return len(rows)
