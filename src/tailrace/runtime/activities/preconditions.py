"""Preconditions: checks that gate data nodes and activities. FINISHED when the check holds,
FALSE when it does not (the runner retries until preconditionTimeout)."""

from __future__ import annotations

from tailrace.runtime.activities import sql
from tailrace.runtime.activities.common import location, node_for
from tailrace.runtime.activities.databases import connect
from tailrace.runtime.activities.registry import ActivityRegistry, Role
from tailrace.runtime.activities.shell_command import run_shell_like
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.staging import ActivityError


def register(registry: ActivityRegistry) -> None:
    for type_name, check in (
        ("S3KeyExists", s3_key_exists),
        ("S3PrefixNotEmpty", s3_prefix_not_empty),
        ("Exists", exists),
        ("ShellCommandPrecondition", shell_precondition),
    ):
        registry.register(type_name, check, role=Role.PRECONDITION)


def _verdict(holds: bool, what: str) -> AttemptOutcome:
    return AttemptOutcome(status="FINISHED" if holds else "FALSE", error_message=None if holds else what)


def _required(ctx: AttemptContext, field: str) -> str:
    value = ctx.field(field)
    if not value:
        raise ActivityError(f"'{field}' is required", location(ctx, field))
    return value


def s3_key_exists(ctx: AttemptContext) -> AttemptOutcome:
    key = _required(ctx, "s3Key")
    loc = ctx.storage.resolve(key)
    holds = loc.store.head(loc.bucket, loc.key) is not None
    ctx.log.write(f"S3KeyExists {key}: {holds}\n")
    return _verdict(holds, f"{key} does not exist")


def s3_prefix_not_empty(ctx: AttemptContext) -> AttemptOutcome:
    prefix = _required(ctx, "s3Prefix")
    holds = any(True for _ in ctx.storage.list_files(prefix if prefix.endswith("/") else prefix + "/"))
    if not holds:
        loc = ctx.storage.resolve(prefix)
        holds = any(True for _ in loc.store.list(loc.bucket, loc.key))
    ctx.log.write(f"S3PrefixNotEmpty {prefix}: {holds}\n")
    return _verdict(holds, f"nothing under {prefix}")


def exists(ctx: AttemptContext) -> AttemptOutcome:
    node = ctx.instance.node
    if node is None:
        raise ActivityError("Exists must be used as the precondition of a data node")
    component = node[1:].rsplit("_", 1)[0]
    if ctx.resolved.objects[component].type in (*sql.SQL_NODES, "RedshiftDataNode"):
        db, table = sql.sql_node(ctx, component)
        with connect(ctx, db) as conn:  # a database that cannot be reached fails the attempt
            holds = sql.table_exists(db, conn, table)
        ctx.log.write(f"Exists table {table}: {holds}\n")
        return _verdict(holds, f"table {table} does not exist")
    if ctx.resolved.objects[component].type == "DynamoDBDataNode":
        from tailrace.runtime.activities import dynamodb

        return dynamodb.node_table_exists(ctx, component)
    data = node_for(ctx, component)
    holds = ctx.storage.exists(data.uri)
    ctx.log.write(f"Exists {data.uri}: {holds}\n")
    return _verdict(holds, f"{data.uri} does not exist")


def shell_precondition(ctx: AttemptContext) -> AttemptOutcome:
    return run_shell_like(ctx, precondition=True)
