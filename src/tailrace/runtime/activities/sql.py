"""SQL work on database objects (databases.py): SqlActivity, and CopyActivity to or from a
SqlDataNode or MySqlDataNode.

Scripts keep JDBC's `?` placeholders, filled in order from `scriptArgument`. A script runs in
one transaction (MySQL commits DDL statements on its own; docs/databases.md). Copies into a
table are one transaction; copies out of one are written to a staging file and published
atomically, so a failed copy leaves nothing half-written.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tailrace.runtime.activities.common import location, node_field, script_text
from tailrace.runtime.activities.databases import (
    Database,
    connect,
    database_of,
    explain,
    node_database,
    placeholders,
    statements,
    table_name,
)
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.staging import ActivityError, NodeData, require_exists

SQL_NODES = ("SqlDataNode", "MySqlDataNode")
BATCH = 1000


def register(registry: ActivityRegistry) -> None:
    registry.register("SqlActivity", run_sql)


def run_statements(db: Database, conn: Any, script: str, args: Sequence[str]) -> int:
    """Run every statement of the script; the arguments fill the `?`s in order across them."""
    if not args and db.kind != "mysql":
        # One call, as the drivers take whole scripts (PostgreSQL's $$ bodies stay intact).
        if db.kind == "sqlite":
            conn.executescript(script)
        else:
            conn.cursor().execute(script)
        return len(statements(script))
    parts = statements(script, hash_comments=db.kind == "mysql")
    remaining = list(args)
    cur = conn.cursor()
    for part in parts:
        wanted = placeholder_count(part)
        if wanted > len(remaining):
            raise ValueError(f"the script has more ? placeholders than scriptArgument values ({len(args)})")
        values, remaining = remaining[:wanted], remaining[wanted:]
        if wanted:
            cur.execute(placeholders(db, part), values)
        else:
            cur.execute(part)
    if remaining:
        raise ValueError(
            f"{len(args)} scriptArgument value(s) for {len(args) - len(remaining)} ? placeholder(s)"
        )
    return len(parts)


def placeholder_count(sql: str) -> int:
    count, quote = 0, ""
    for ch in sql:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "?":
            count += 1
    return count


def run_sql(ctx: AttemptContext) -> AttemptOutcome:
    db_id = ctx.component.ref("database")
    if db_id is None:
        raise ActivityError("needs 'database'", location(ctx, "database"))
    db = database_of(ctx, db_id)
    # A script in the object store is not expression-evaluated (as in the service).
    script, source = script_text(ctx, "script")
    args = ctx.fields("scriptArgument")
    ctx.log.write(f"running {source} on {db.shown} ({db.object_id})\n")
    with connect(ctx, db) as conn:
        try:
            count = run_statements(db, conn, script, args)
        except Exception as exc:
            raise ActivityError(f"{type(exc).__name__}: {explain(db, exc)}".strip(), location(ctx, "script"))
    ctx.log.write(f"ran {count} statement(s); committed\n")
    return AttemptOutcome(status="FINISHED", summary={"statements": count})


# --- CopyActivity with SqlDataNode ------------------------------------------------------------


def sql_node(ctx: AttemptContext, node_id: str) -> tuple[Database, str]:
    """The node's database and its (checked) table name."""
    table = node_field(ctx, node_id, "table") or node_field(ctx, node_id, "tableName")
    if not table:
        raise ActivityError("needs 'table'", location_of(node_id, "table"))
    schema = node_field(ctx, node_id, "schemaName")
    if schema and "." not in table:
        table = f"{schema}.{table}"
    return node_database(ctx, node_id), table_name(table, node_id)


def location_of(node_id: str, fld: str) -> Any:
    from tailrace.errors import Location

    return Location(object_id=node_id, field=fld)


def format_value(value: Any, separator: str) -> str:
    """CopyActivity's records: unquoted, NULL as \\N, separators and backslashes escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).hex()
    text = str(value).replace("\\", "\\\\").replace(separator, "\\" + separator)
    return text.replace("\n", "\\n").replace("\r", "\\r")


def copy_sql_to_store(ctx: AttemptContext, src_id: str, dst: NodeData, staging: Path) -> int:
    db, table = sql_node(ctx, src_id)
    query = node_field(ctx, src_id, "selectQuery") or f"SELECT * FROM {table}"
    out = staging / "000000_0"
    count = 0
    ctx.log.write(f"reading {src_id} from {db.shown}\n")
    with connect(ctx, db) as conn, out.open("w", encoding="utf-8", newline="") as fh:
        cur = conn.cursor()
        try:
            cur.execute(query)
        except Exception as exc:
            fld = "selectQuery" if node_field(ctx, src_id, "selectQuery") else "table"
            raise ActivityError(f"{type(exc).__name__}: {explain(db, exc)}".strip(), location_of(src_id, fld))
        while rows := cur.fetchmany(BATCH):
            for row in rows:
                fh.write(dst.separator.join(format_value(v, dst.separator) for v in row) + "\n")
                count += 1
            ctx.heartbeat()
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
            current.append({"n": "\n", "r": "\r"}.get(nxt, nxt))
            raw_field.append(ch + nxt)
        elif ch == separator:
            fields.append(None if "".join(raw_field) == "\\N" else "".join(current))
            current, raw_field = [], []
        else:
            current.append(ch)
            raw_field.append(ch)
    fields.append(None if "".join(raw_field) == "\\N" else "".join(current))
    return fields


def iter_records(ctx: AttemptContext, src: NodeData) -> Iterator[list[str | None]]:
    """The input's records one by one (the input is never held in memory whole)."""
    require_exists(ctx.storage, src, role="input")
    for raw in ctx.storage.iter_lines(src.uri):
        line = raw.decode("utf-8").rstrip("\r\n")
        if line:
            yield split_record(line, src.separator)


def table_exists(db: Database, conn: Any, table: str) -> bool:
    """Asked of the catalog, so that a miss does not abort PostgreSQL's transaction."""
    cur = conn.cursor()
    if db.kind == "postgresql":
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return bool(cur.fetchone()[0])
    if db.kind == "mysql":
        schema, _, name = table.rpartition(".")
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) "
            "AND table_name = %s",
            [schema or None, name],
        )
        return bool(cur.fetchone()[0])
    try:
        cur.execute(f"SELECT 1 FROM {table} WHERE 1 = 0")
        return True
    except Exception:
        return False


def copy_store_to_sql(ctx: AttemptContext, src: NodeData, dst_id: str) -> int:
    db, table = sql_node(ctx, dst_id)
    insert = node_field(ctx, dst_id, "insertQuery")
    create = node_field(ctx, dst_id, "createTableSql")
    require_exists(ctx.storage, src, role="input")  # before anything touches the table
    records = iter_records(ctx, src)
    ctx.log.write(f"writing {src.uri} into {dst_id} on {db.shown}\n")
    count = 0
    with connect(ctx, db) as conn:
        cur = conn.cursor()
        fld = "createTableSql"
        try:
            if create and not table_exists(db, conn, table):
                cur.execute(create)
            fld = "insertQuery" if insert else "table"
            if db.kind == "postgresql" and not insert:
                # Whole records into the table: COPY is several times faster than INSERTs.
                with cur.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in records:
                        copy.write_row(row)
                        count += 1
                        if count % BATCH == 0:
                            ctx.heartbeat()
            else:
                for batch in iter(lambda: list(itertools.islice(records, BATCH)), []):
                    by_width: dict[int, list[list[str | None]]] = {}
                    for row in batch:
                        by_width.setdefault(len(row), []).append(row)
                    for width, group in by_width.items():
                        sql = insert or f"INSERT INTO {table} VALUES ({', '.join('?' for _ in range(width))})"
                        cur.executemany(placeholders(db, sql), group)
                    count += len(batch)
                    ctx.heartbeat()
        except ActivityError:
            raise
        except Exception as exc:
            raise ActivityError(f"{type(exc).__name__}: {explain(db, exc)}".strip(), location_of(dst_id, fld))
    ctx.log.write(f"wrote {count} record(s); committed\n")
    return count
