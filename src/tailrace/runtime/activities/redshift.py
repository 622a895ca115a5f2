"""RedshiftCopyActivity onto PostgreSQL: a RedshiftDataNode is a PostgreSQL table (its
RedshiftDatabase mapped by [databases.redshift_clusters]).

As the Developer Guide has it, the input is first loaded into a table named `staging` (here a
temporary table shaped like the target); `transformSql` selects from it; then `insertMode`:

- KEEP_EXISTING: add the rows whose key is not in the table; rows already there stay as they are;
- OVERWRITE_EXISTING: rows whose key is in the table replace those rows; the others are added;
- TRUNCATE: delete every row of the table, then add the new ones;
- APPEND: add every row (no key needed; duplicates are possible).

The key is the node's `primaryKeys`, else the table's primary key (Redshift's sort and
distribution keys do not exist in PostgreSQL). Everything happens in one transaction.
A RedshiftDataNode input with an S3DataNode output unloads the table to the store instead.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tailrace.errors import Location
from tailrace.runtime.activities import sql
from tailrace.runtime.activities.common import location, node_field, node_for
from tailrace.runtime.activities.databases import (
    IDENTIFIER,
    Database,
    connect,
    node_database,
    scrub,
    table_name,
)
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.staging import ActivityError, NodeData, require_exists, upload

MODES = ("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND")
# COPY options that change how the records read; others have no meaning here and are refused.
OPTIONS = (
    "IGNOREHEADER",
    "EMPTYASNULL",
    "BLANKSASNULL",
    "IGNOREBLANKLINES",
    "DELIMITER",
    "CSV",
    "TRIMBLANKS",
)


def register(registry: ActivityRegistry) -> None:
    registry.register("RedshiftCopyActivity", run_redshift_copy)


def _target(ctx: AttemptContext, node_id: str) -> tuple[Database, str]:
    """The node's database and its table (schema-qualified when schemaName is set)."""
    name = node_field(ctx, node_id, "tableName")
    if not name:
        raise ActivityError("needs 'tableName'", Location(object_id=node_id, field="tableName"))
    table_name(name, node_id, "tableName")
    schema = node_field(ctx, node_id, "schemaName")
    if schema and not IDENTIFIER.match(schema):
        raise ActivityError(
            f"{schema!r} is not a schema name", Location(object_id=node_id, field="schemaName")
        )
    db = node_database(ctx, node_id)
    if db.kind != "postgresql":
        raise ActivityError(
            f"a RedshiftDataNode is a PostgreSQL table here; {db.shown} is {db.kind}",
            Location(object_id=node_id, field="database"),
        )
    return db, f"{schema}.{name}" if schema and "." not in name else name


def _options(ctx: AttemptContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in ctx.fields("commandOptions"):
        word, _, arg = text.strip().partition(" ")
        key = word.upper()
        if key not in OPTIONS:
            raise ActivityError(
                f"COPY option {word!r} is not supported here; these are: {', '.join(OPTIONS)}",
                location(ctx, "commandOptions"),
            )
        found[key] = arg.strip().strip("'")
    return found


def _records(ctx: AttemptContext, src: NodeData, options: dict[str, str]) -> list[list[str | None]]:
    """The input's records: CSV quoting for CSV data (COPY ... CSV), backslash escapes otherwise."""
    require_exists(ctx.storage, src, role="input")
    separator = options.get("DELIMITER") or src.separator
    lines = [raw.decode("utf-8").rstrip("\r\n") for raw in ctx.storage.iter_lines(src.uri)]
    skip = int(options["IGNOREHEADER"]) if options.get("IGNOREHEADER", "").isdigit() else 0
    lines = lines[skip:]
    lines = [line for line in lines if line.strip()]  # blank lines are never records here
    rows: list[list[str | None]]
    if src.format_type == "CSV" or "CSV" in options:
        rows = [list(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=separator)]
    else:
        rows = [sql.split_record(line, separator) for line in lines]
    for row in rows:
        for i, value in enumerate(row):
            if value is None:
                continue
            if "TRIMBLANKS" in options:
                value = row[i] = value.rstrip()
            if ("EMPTYASNULL" in options and value == "") or (
                "BLANKSASNULL" in options and not value.strip()
            ):
                row[i] = None
    return rows


def _key(ctx: AttemptContext, node_id: str, conn: Any, table: str) -> list[str]:
    keys = [
        k.strip() for text in ctx.resolved.objects[node_id].strings("primaryKeys") for k in text.split(",")
    ]
    keys = [k for k in keys if k]
    for k in keys:
        if not IDENTIFIER.match(k):
            raise ActivityError(
                f"{k!r} is not a column name", Location(object_id=node_id, field="primaryKeys")
            )
    if keys:
        return keys
    cur = conn.cursor()
    cur.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        [table],
    )
    return [r[0] for r in cur.fetchall()]


HIVE_TO_PG = {
    "string": "text",
    "int": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "double": "double precision",
    "float": "real",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "date": "date",
}


def _staging_sql(table: str, columns: tuple[tuple[str, str], ...], transform: str | None) -> str:
    """`staging` is shaped like the target, or like the input's columns when transformSql reshapes it."""
    if transform and columns:
        cols = ", ".join(
            f"{n} {HIVE_TO_PG.get(t.split('(')[0], 'text')}" for n, t in columns if IDENTIFIER.match(n)
        )
        return f"CREATE TEMP TABLE staging ({cols}) ON COMMIT DROP"
    return f"CREATE TEMP TABLE staging (LIKE {table}) ON COMMIT DROP"


RowsFor = Callable[[list[str]], list[list[str | None]]]


def load_rows(
    ctx: AttemptContext,
    dst_id: str,
    mode: str,
    rows_for: RowsFor,
    origin: Location,
    columns: tuple[tuple[str, str], ...] = (),
) -> int:
    """Load into the output table: rows_for(staging's column names) gives the records."""
    db, table = _target(ctx, dst_id)
    if table.lower() == "staging":
        raise ActivityError(
            "a target table named staging is hidden by the staging table of the copy; give schemaName",
            Location(object_id=dst_id, field="tableName"),
        )
    transform = ctx.field("transformSql")
    create = node_field(ctx, dst_id, "createTableSql")
    ctx.log.write(f"loading into {table} on {db.shown} ({mode})\n")
    with connect(ctx, db) as conn:
        cur = conn.cursor()
        step, where = "createTableSql", Location(object_id=dst_id, field="createTableSql")
        try:
            if not sql.table_exists(db, conn, table):
                if not create:
                    raise ActivityError(
                        f"table {table} does not exist on {db.shown} and the node has no createTableSql",
                        Location(object_id=dst_id, field="tableName"),
                    )
                cur.execute(create)
            keys = _key(ctx, dst_id, conn, table) if mode in ("KEEP_EXISTING", "OVERWRITE_EXISTING") else []
            if mode in ("KEEP_EXISTING", "OVERWRITE_EXISTING") and not keys:
                raise ActivityError(
                    f"insertMode {mode} matches rows by key: give the output node primaryKeys or the table "
                    f"{table} a primary key",
                    Location(object_id=dst_id, field="primaryKeys"),
                )
            step, where = "input", location(ctx, "input")
            cur.execute(_staging_sql(table, columns, transform))
            cur.execute("SELECT * FROM staging LIMIT 0")
            names = [d.name for d in cur.description]
            rows = rows_for(names)
            bad = next((n for n, r in enumerate(rows, 1) if len(r) != len(names)), None)
            if bad is not None:
                raise ActivityError(
                    f"record {bad} has {len(rows[bad - 1])} field(s); staging has {len(names)} column(s) "
                    f"({', '.join(names)})",
                    origin,
                )
            with cur.copy("COPY staging FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            step, where = "transformSql", location(ctx, "transformSql")
            source = f"({transform}) AS s" if transform else "staging AS s"
            if transform:
                cur.execute(f"SELECT * FROM {source} LIMIT 0")  # its errors name transformSql
            step, where = "insertMode", location(ctx, "insertMode")
            match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            if mode == "TRUNCATE":
                cur.execute(f"DELETE FROM {table}")
            elif mode == "OVERWRITE_EXISTING":
                cur.execute(f"DELETE FROM {table} AS t USING {source} WHERE {match}")
            if mode == "KEEP_EXISTING":
                cur.execute(
                    f"INSERT INTO {table} SELECT s.* FROM {source} WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {table} AS t WHERE {match})"
                )
            else:
                cur.execute(f"INSERT INTO {table} SELECT s.* FROM {source}")
            written = cur.rowcount
        except ActivityError:
            raise
        except Exception as exc:
            raise ActivityError(f"{step}: {type(exc).__name__}: {scrub(db, str(exc)).strip()}", where)
    ctx.log.write(f"{written} row(s) written to {table}; committed\n")
    return written


def _unload(ctx: AttemptContext, src_id: str, dst: NodeData) -> int:
    db, table = _target(ctx, src_id)
    staging = Path(tempfile.mkdtemp(dir=ctx.work_dir, prefix="unload-"))
    count = 0
    try:
        with connect(ctx, db) as conn, (staging / "000000_0").open("w", encoding="utf-8") as fh:
            cur = conn.cursor()
            try:
                cur.execute(f"SELECT * FROM {table}")
            except Exception as exc:
                raise ActivityError(
                    f"{type(exc).__name__}: {scrub(db, str(exc)).strip()}",
                    Location(object_id=src_id, field="tableName"),
                )
            while batch := cur.fetchmany(sql.BATCH):
                for row in batch:
                    fh.write(dst.separator.join(sql.format_value(v, dst.separator) for v in row) + "\n")
                    count += 1
        upload(ctx.storage, dst, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx.log.write(f"unloaded {count} row(s) of {table} to {dst.uri}\n")
    return count


def run_redshift_copy(ctx: AttemptContext) -> AttemptOutcome:
    comp = ctx.component
    mode = (ctx.field("insertMode") or "").upper()
    if mode not in MODES:
        raise ActivityError(
            f"insertMode must be one of {', '.join(MODES)}; found {mode!r}", location(ctx, "insertMode")
        )
    inputs, outputs = comp.refs("input"), comp.refs("output")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ActivityError(
            "RedshiftCopyActivity takes exactly one input and one output", location(ctx, "input")
        )
    in_type = ctx.resolved.objects[inputs[0]].type
    out_type = ctx.resolved.objects[outputs[0]].type
    if out_type == "RedshiftDataNode" and in_type == "S3DataNode":
        src = node_for(ctx, inputs[0])
        rows = _records(ctx, src, _options(ctx))
        where = Location(object_id=src.component_id, field=src.field)
        written = load_rows(ctx, outputs[0], mode, lambda names: rows, where, src.columns)
        return AttemptOutcome(status="FINISHED", summary={"rows_written": written})
    if out_type == "RedshiftDataNode" and in_type == "DynamoDBDataNode":
        from tailrace.runtime.activities import dynamodb

        items = dynamodb.scan_items(ctx, inputs[0])
        where = Location(object_id=inputs[0], field="tableName")
        # As COPY from DynamoDB: attributes are matched to the table's columns by name.
        written = load_rows(ctx, outputs[0], mode, lambda names: dynamodb.as_rows(items, names), where)
        return AttemptOutcome(status="FINISHED", summary={"rows_written": written})
    if in_type == "RedshiftDataNode" and out_type == "S3DataNode":
        count = _unload(ctx, inputs[0], node_for(ctx, outputs[0]))
        return AttemptOutcome(status="FINISHED", summary={"rows_written": count})
    raise ActivityError(
        f"RedshiftCopyActivity copies S3DataNode or DynamoDBDataNode into a RedshiftDataNode, or a "
        f"RedshiftDataNode to an S3DataNode; found {in_type} to {out_type}",
        location(ctx, "output"),
    )
