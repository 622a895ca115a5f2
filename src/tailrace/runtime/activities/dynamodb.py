"""DynamoDB through boto3 at the configured endpoint (`dynamodb_endpoint_url`): the
DynamoDBTableExists and DynamoDBDataExists preconditions, and HiveCopyActivity between a
DynamoDBDataNode and an S3DataNode (or another DynamoDBDataNode).

Items go to S3 one per line as DynamoDB's own typed JSON, `{"Item": {"id": {"S": "a"}}}` (the
DYNAMODB_JSON form of DynamoDB's S3 exports), unless the S3 node has a CSV/TSV format with
columns, which then name the attributes written (missing ones as \\N). `filterSql` is a
predicate over the input format's columns, evaluated by a locked-down in-memory DuckDB.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tailrace.errors import Location
from tailrace.runtime.activities import sql
from tailrace.runtime.activities.common import location, node_field, node_for
from tailrace.runtime.activities.registry import ActivityRegistry, Role
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.dbaccess import ReachRefused
from tailrace.runtime.staging import ActivityError, NodeData, require_exists, upload
from tailrace.storage import OwnerStorage

Item = dict[str, Any]
NUMERIC = ("int", "bigint", "smallint", "tinyint", "double", "float", "decimal")


def register(registry: ActivityRegistry) -> None:
    registry.register("DynamoDBTableExists", table_exists, role=Role.PRECONDITION)
    registry.register("DynamoDBDataExists", data_exists, role=Role.PRECONDITION)


def _own_field(ctx: AttemptContext, obj_id: str, name: str) -> str | None:
    """A field of the running precondition, or of a data node (in the node's own scope)."""
    if obj_id == ctx.instance.component_id:
        return ctx.field(name)
    return node_field(ctx, obj_id, name)


def _table(ctx: AttemptContext, obj_id: str) -> str:
    name = _own_field(ctx, obj_id, "tableName")
    if not name:
        raise ActivityError("needs 'tableName'", Location(object_id=obj_id, field="tableName"))
    if isinstance(ctx.storage, OwnerStorage):
        try:
            ctx.databases.check_table(ctx.owner or "default", name)
        except ReachRefused as exc:
            raise ActivityError(str(exc), Location(object_id=obj_id, field="tableName"))
    return name


def client(ctx: AttemptContext, obj_id: str) -> Any:
    import boto3
    from botocore.config import Config

    access = ctx.databases
    region = _own_field(ctx, obj_id, "region") if "region" in ctx.resolved.objects[obj_id].fields else None
    keys: dict[str, str] = {}
    if access.aws_access_key_id and access.aws_secret_access_key:
        keys = {
            "aws_access_key_id": access.aws_access_key_id,
            "aws_secret_access_key": access.aws_secret_access_key,
        }
    elif access.dynamodb_endpoint_url and boto3.Session().get_credentials() is None:
        keys = {"aws_access_key_id": "tailrace", "aws_secret_access_key": "tailrace"}  # a local endpoint
    return boto3.client(
        "dynamodb",
        endpoint_url=access.dynamodb_endpoint_url,
        region_name=region or access.region,
        config=Config(connect_timeout=access.settings.connect_timeout, retries={"max_attempts": 2}),
        **keys,
    )


def _failure(exc: Exception, obj_id: str, table: str, endpoint: str | None) -> ActivityError:
    where = Location(object_id=obj_id, field="tableName")
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    if code == "ResourceNotFoundException":
        return ActivityError(f"DynamoDB table '{table}' does not exist", where)
    if code:
        return ActivityError(f"DynamoDB refused the request on '{table}': {code}: {exc}", where)
    return ActivityError(f"cannot reach DynamoDB at {endpoint or 'the AWS endpoint'}: {exc}", where)


def _call(ctx: AttemptContext, obj_id: str, table: str, op: str, **kwargs: Any) -> Any:
    try:
        return getattr(client(ctx, obj_id), op)(TableName=table, **kwargs)
    except ActivityError:
        raise
    except Exception as exc:
        raise _failure(exc, obj_id, table, ctx.databases.dynamodb_endpoint_url)


def table_exists(ctx: AttemptContext) -> AttemptOutcome:
    return node_table_exists(ctx, ctx.instance.component_id)


def node_table_exists(ctx: AttemptContext, oid: str) -> AttemptOutcome:
    """DynamoDBTableExists, and Exists on a DynamoDBDataNode: does DescribeTable find it."""
    table = _table(ctx, oid)
    try:
        client(ctx, oid).describe_table(TableName=table)
        holds = True
    except Exception as exc:
        err = _failure(exc, oid, table, ctx.databases.dynamodb_endpoint_url)
        if "does not exist" not in str(err):
            raise err
        holds = False
    ctx.log.write(f"DynamoDBTableExists {table}: {holds}\n")
    return AttemptOutcome(
        status="FINISHED" if holds else "FALSE", error_message=None if holds else f"{table} does not exist"
    )


def data_exists(ctx: AttemptContext) -> AttemptOutcome:
    oid = ctx.instance.component_id
    table = _table(ctx, oid)
    answer = _call(ctx, oid, table, "scan", Limit=1, Select="COUNT")
    holds = int(answer.get("Count", 0)) > 0 or bool(answer.get("LastEvaluatedKey"))
    ctx.log.write(f"DynamoDBDataExists {table}: {holds}\n")
    return AttemptOutcome(
        status="FINISHED" if holds else "FALSE", error_message=None if holds else f"{table} is empty"
    )


# --- items --------------------------------------------------------------------------------------


def scan_items(ctx: AttemptContext, node_id: str) -> list[Item]:
    table = _table(ctx, node_id)
    items: list[Item] = []
    start: dict[str, Any] = {}
    while True:
        page = _call(ctx, node_id, table, "scan", **start)
        items.extend(page.get("Items", []))
        ctx.heartbeat()
        if not page.get("LastEvaluatedKey"):
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    ctx.log.write(f"read {len(items)} item(s) from DynamoDB table {table}\n")
    return items


def plain(value: Item | None) -> str | None:
    """An attribute value as text: strings and numbers as they are, sets and documents as JSON."""
    if value is None or "NULL" in value:
        return None
    kind, v = next(iter(value.items()))
    if kind in ("S", "N"):
        return str(v)
    if kind == "BOOL":
        return "true" if v else "false"
    if kind == "B":
        return base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode()
    return json.dumps(v, sort_keys=True, default=str)


def as_rows(items: list[Item], names: list[str]) -> list[list[str | None]]:
    """Attributes matched to column names without regard to case, as COPY from DynamoDB does."""
    out = []
    for item in items:
        lower = {k.lower(): v for k, v in item.items()}
        out.append([plain(lower.get(n.lower())) for n in names])
    return out


def _columns(ctx: AttemptContext, node_id: str) -> tuple[tuple[str, str], ...]:
    fmt_id = ctx.resolved.objects[node_id].ref("dataFormat")
    if fmt_id is None:
        return ()
    cols = []
    for text in ctx.resolved.objects[fmt_id].strings("column"):
        parts = text.split()
        if parts:
            cols.append((parts[0], parts[1].lower() if len(parts) > 1 else "string"))
    return tuple(cols)


def _filter(ctx: AttemptContext, items: list[Item], columns: tuple[tuple[str, str], ...]) -> list[Item]:
    """Items for which filterSql holds, evaluated over the input format's columns."""
    condition = ctx.field("filterSql")
    if not condition:
        return items
    if not columns:
        raise ActivityError(
            "filterSql needs the input's dataFormat columns to name", location(ctx, "filterSql")
        )
    if ";" in condition:
        raise ActivityError("filterSql is one predicate (no ';')", location(ctx, "filterSql"))
    import duckdb

    con = duckdb.connect(":memory:", config={"enable_external_access": False, "lock_configuration": True})
    try:
        types = {
            "string": "VARCHAR",
            "int": "INTEGER",
            "bigint": "BIGINT",
            "double": "DOUBLE",
            "boolean": "BOOLEAN",
        }
        cols = ", ".join(f'"{n}" {types.get(t, "VARCHAR")}' for n, t in columns)
        con.execute(f"CREATE TABLE input1 (__row INTEGER, {cols})")
        rows = [[i, *r] for i, r in enumerate(as_rows(items, [n for n, _ in columns]))]
        if rows:
            con.executemany(f"INSERT INTO input1 VALUES ({', '.join('?' for _ in rows[0])})", rows)
        keep = {r[0] for r in con.execute(f"SELECT __row FROM input1 WHERE {condition}").fetchall()}
    except duckdb.Error as exc:
        raise ActivityError(f"filterSql: {exc}", location(ctx, "filterSql"))
    finally:
        con.close()
    return [item for i, item in enumerate(items) if i in keep]


def _typed(value: str | None, kind: str) -> Item:
    if value is None:
        return {"NULL": True}
    return {"N": value} if kind in NUMERIC else {"S": value}


def _items_from_store(ctx: AttemptContext, src: NodeData) -> list[Item]:
    """Lines of DynamoDB JSON, or delimited records named by the format's columns."""
    require_exists(ctx.storage, src, role="input")
    items: list[Item] = []
    for n, raw in enumerate(ctx.storage.iter_lines(src.uri), start=1):
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line.strip():
            continue
        if src.columns and src.format_type in ("CSV", "TSV", "Custom"):
            values = sql.split_record(line, src.separator)
            item = {c: _typed(v, t) for (c, t), v in zip(src.columns, values, strict=False) if v is not None}
        else:
            try:
                doc = json.loads(line)
                item = doc["Item"] if isinstance(doc, dict) and "Item" in doc else doc
                if not isinstance(item, dict) or not all(isinstance(v, dict) for v in item.values()):
                    raise ValueError("not an item of typed attributes")
                item = {k: _binary(v) for k, v in item.items()}
            except (ValueError, KeyError) as exc:
                raise ActivityError(
                    f"line {n} of {src.uri} is not a DynamoDB JSON item: {exc}",
                    Location(object_id=src.component_id, field=src.field),
                )
        items.append(item)
    return items


def _binary(value: Item) -> Item:
    """B and BS values are base64 in JSON; boto3 wants the bytes."""
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(v) for v in value["BS"]]}
    if "M" in value:
        return {"M": {k: _binary(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_binary(v) for v in value["L"]]}
    return value


def _write_items(ctx: AttemptContext, node_id: str, items: list[Item]) -> None:
    table = _table(ctx, node_id)
    _call(ctx, node_id, table, "describe_table")  # a missing table fails before any write
    ddb = client(ctx, node_id)
    try:
        for start in range(0, len(items), 25):
            pending: dict[str, Any] = {
                table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
            }
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            ctx.heartbeat()
    except Exception as exc:
        raise _failure(exc, node_id, table, ctx.databases.dynamodb_endpoint_url)
    ctx.log.write(f"wrote {len(items)} item(s) to DynamoDB table {table}\n")


def _lines(items: list[Item], dst: NodeData) -> Iterator[str]:
    if dst.columns and dst.format_type in ("CSV", "TSV", "Custom"):
        for row in as_rows(items, [c for c, _ in dst.columns]):
            yield dst.separator.join(sql.format_value(v, dst.separator) for v in row) + "\n"
        return
    for item in items:
        yield json.dumps({"Item": item}, sort_keys=True, default=_b64) + "\n"


def _b64(value: Any) -> str:
    return base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)


def hive_copy(ctx: AttemptContext, in_id: str, out_id: str) -> AttemptOutcome:
    """HiveCopyActivity with a DynamoDBDataNode on one side (or both)."""
    in_type = ctx.resolved.objects[in_id].type
    out_type = ctx.resolved.objects[out_id].type
    if in_type == "DynamoDBDataNode":
        items, columns = scan_items(ctx, in_id), _columns(ctx, in_id)
    else:
        src = node_for(ctx, in_id)
        items, columns = _items_from_store(ctx, src), src.columns
    items = _filter(ctx, items, columns)
    if out_type == "DynamoDBDataNode":
        _write_items(ctx, out_id, items)
        return AttemptOutcome(status="FINISHED", summary={"rows_written": len(items)})
    dst = node_for(ctx, out_id)
    staging = Path(tempfile.mkdtemp(dir=ctx.work_dir, prefix="ddb-"))
    try:
        with (staging / "000000_0").open("w", encoding="utf-8") as fh:
            fh.writelines(_lines(items, dst))
        upload(ctx.storage, dst, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx.log.write(f"wrote {len(items)} item(s) to {dst.uri}\n")
    return AttemptOutcome(status="FINISHED", summary={"rows_written": len(items)})
