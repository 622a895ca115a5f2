"""CopyActivity: files between data nodes of the object store, and records to or from a
SqlDataNode or MySqlDataNode (tailrace.runtime.activities.sql)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tailrace.runtime.activities import sql
from tailrace.runtime.activities.common import location, node_for
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.staging import ActivityError, download, require_exists, upload


def register(registry: ActivityRegistry) -> None:
    registry.register("CopyActivity", run_copy)


def run_copy(ctx: AttemptContext) -> AttemptOutcome:
    comp = ctx.component
    inputs, outputs = comp.refs("input"), comp.refs("output")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ActivityError("CopyActivity takes exactly one input and one output", location(ctx, "input"))
    in_type = ctx.resolved.objects[inputs[0]].type
    out_type = ctx.resolved.objects[outputs[0]].type
    if out_type in sql.SQL_NODES:
        count = sql.copy_store_to_sql(ctx, node_for(ctx, inputs[0]), outputs[0])
        ctx.log.write(f"copied {count} record(s) into {outputs[0]}\n")
        return AttemptOutcome(status="FINISHED", summary={"rows_written": count})
    dst = node_for(ctx, outputs[0])
    staging = Path(tempfile.mkdtemp(dir=ctx.work_dir, prefix="copy-"))
    try:
        if in_type in sql.SQL_NODES:
            count = sql.copy_sql_to_store(ctx, inputs[0], dst, staging)
            what = f"{count} record(s) from {inputs[0]}"
        else:
            src = node_for(ctx, inputs[0])
            require_exists(ctx.storage, src, role="input")
            count = download(ctx.storage, src, staging)
            what = f"{count} file(s) from {src.uri}"
            if not dst.is_directory and src.is_directory:
                # dir -> file: concatenate records in file-name order.
                merged = ctx.work_dir / "merged"
                with merged.open("wb") as out:
                    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                        out.write(path.read_bytes())
                shutil.rmtree(staging)
                staging.mkdir()
                shutil.move(str(merged), staging / "part-0")
        upload(ctx.storage, dst, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx.log.write(f"copied {what} to {dst.uri}\n")
    return AttemptOutcome(status="FINISHED", summary={"files_copied": count})
