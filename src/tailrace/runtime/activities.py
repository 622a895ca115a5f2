"""Running one attempt of an activity or precondition instance, in-process.

`execute_attempt(ctx)` is the attempt boundary: whatever happens inside becomes an
AttemptOutcome (with the error and its stack trace), never an exception.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from tailrace.definition import Category
from tailrace.errors import TailraceError
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.sandbox import ShellPlace, shell_place
from tailrace.runtime.shell import run_command
from tailrace.runtime.staging import ActivityError, NodeData, download, node_data, require_exists, upload

Runner = Callable[[AttemptContext], AttemptOutcome]
ACTIVITIES: dict[str, Runner] = {}


def activity(type_name: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        ACTIVITIES[type_name] = fn
        return fn

    return register


def execute_attempt(ctx: AttemptContext) -> AttemptOutcome:
    """Run one attempt; every failure is reported in the outcome, with its stack trace."""
    # Importing these registers their activity and precondition types.
    from tailrace.runtime import hive, sql  # noqa: F401
    from tailrace.runtime.preconditions import PRECONDITIONS

    inst = ctx.instance
    if inst.category is Category.PRECONDITION:
        runner = PRECONDITIONS.get(inst.type)
    else:
        runner = ACTIVITIES.get(inst.type)
    if runner is None:
        return AttemptOutcome(
            status="FAILED",
            error_id="UnsupportedType",
            error_message=f"{inst.type} '{inst.component_id}' cannot run on this installation "
            "(see docs/definitions.md for what runs here)",
        )
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        return runner(ctx)
    except TailraceError as exc:
        ctx.log.write(f"ERROR {exc}\n")
        return AttemptOutcome(
            status="FAILED",
            error_id=type(exc).__name__,
            error_message=str(exc),
            error_stack_trace=traceback.format_exc(),
        )
    except Exception as exc:  # the attempt boundary: record anything, crash nothing
        trace = traceback.format_exc()
        ctx.log.write(trace)
        return AttemptOutcome(
            status="FAILED",
            error_id=type(exc).__name__,
            error_message=f"{type(exc).__name__}: {exc}",
            error_stack_trace=trace,
        )


# --- data nodes -------------------------------------------------------------------------------


def node_for(ctx: AttemptContext, node_id: str) -> NodeData:
    """The node's location evaluated in its own instance scope for this window."""
    node = ctx.resolved.objects[node_id]
    window = ctx.scopes.planner.window_at(node, ctx.instance.scheduled_start)
    from tailrace.plan import Window

    window = window or Window(
        index=0,
        start=ctx.instance.scheduled_start,
        end=ctx.instance.scheduled_end,
        run_at=ctx.instance.run_at,
    )
    scope = ctx.scopes.window_scope(node_id, window)
    field = "directoryPath" if node.string("directoryPath") is not None else "filePath"
    uri = ctx.field(field, scope, object_id=node_id) if node.string(field) is not None else None
    return node_data(node, uri=uri, field=field, resolved=ctx.resolved)


def _bool(text: str | None, default: bool) -> bool:
    if text is None:
        return default
    return text.strip().lower() in ("true", "1", "yes")


def _script_text(ctx: AttemptContext, inline_field: str) -> tuple[str, str]:
    """The script from the inline field (evaluated) or from scriptUri (read as is)."""
    inline = ctx.field(inline_field)
    if inline is not None:
        return inline, f"{ctx.instance.component_id}.{inline_field}"
    uri = ctx.field("scriptUri")
    if uri is None:
        raise ActivityError(
            f"needs '{inline_field}' or 'scriptUri'",
            _loc(ctx, inline_field),
        )
    try:
        return ctx.storage.read_bytes(uri).decode("utf-8"), uri
    except TailraceError as exc:
        raise ActivityError(f"cannot read scriptUri {uri}: {exc}", _loc(ctx, "scriptUri"))


def _loc(ctx: AttemptContext, field: str) -> object:
    from tailrace.errors import Location

    return Location(object_id=ctx.instance.component_id, field=field)


# --- ShellCommandActivity ---------------------------------------------------------------------


def run_shell_like(ctx: AttemptContext, *, precondition: bool = False) -> AttemptOutcome:
    place = shell_place(ctx.execution() if ctx.execution else None, ctx.work_dir)
    try:
        return _run_shell_in(ctx, place, precondition=precondition)
    finally:
        place.close()


def _run_shell_in(ctx: AttemptContext, place: ShellPlace, *, precondition: bool) -> AttemptOutcome:
    comp = ctx.component
    command = ctx.field("command")
    args = ctx.fields("scriptArgument")
    work = place.cwd
    if command is None:
        uri = ctx.field("scriptUri")
        if uri is None:
            raise ActivityError("needs 'command' or 'scriptUri'", _loc(ctx, "command"))
        script = work / "script.sh"
        script.write_bytes(ctx.storage.read_bytes(uri))
        script.chmod(0o755)
        place.hand_over(script)
        argv = ["/bin/bash", str(script), *args]
    else:
        argv = ["/bin/bash", "-c", command, "bash", *args]
    extra = {"TAILRACE_PIPELINE_ID": ctx.pipeline_id, "TAILRACE_INSTANCE_ID": ctx.instance.id}
    stage = _bool(ctx.field("stage"), False) and not precondition
    outputs: list[tuple[NodeData, Path]] = []
    if stage:
        for n, node_id in enumerate(comp.refs("input"), start=1):
            data = node_for(ctx, node_id)
            require_exists(ctx.storage, data, role="input")
            target = work / f"input{n}"
            download(ctx.storage, data, target)
            place.hand_over(target)
            extra[f"INPUT{n}_STAGING_DIR"] = str(target)
        for n, node_id in enumerate(comp.refs("output"), start=1):
            data = node_for(ctx, node_id)
            target = work / f"output{n}"
            target.mkdir(parents=True, exist_ok=True)
            place.hand_over(target)
            extra[f"OUTPUT{n}_STAGING_DIR"] = str(target)
            outputs.append((data, target))
    timeout = ctx.instance.attempt_timeout.total_seconds() if ctx.instance.attempt_timeout else None
    ctx.log.write(f"$ {' '.join(argv[2:3]) if command else argv[1]} {' '.join(args)}\n".rstrip() + "\n")
    result = run_command(
        argv,
        cwd=work,
        env=place.env(extra),
        log=ctx.log,
        cancelled=ctx.cancelled,
        heartbeat=ctx.heartbeat,
        timeout=timeout,
        identity=place.identity,
    )
    for name in ("stdout", "stderr"):
        uri = ctx.field(name)
        if uri:
            ctx.storage.write_bytes(
                uri, (result.stdout_tail if name == "stdout" else result.stderr_tail).encode()
            )
    if result.cancelled:
        return AttemptOutcome(status="CANCELED", error_message="attempt canceled")
    if result.timed_out:
        return AttemptOutcome(
            status="FAILED",
            error_id="AttemptTimeout",
            error_message=f"attemptTimeout of {timeout:.0f} s exceeded",
        )
    if result.returncode != 0:
        if precondition:
            return AttemptOutcome(
                status="FALSE", error_message=f"command exited with status {result.returncode}"
            )
        tail = result.stderr_tail.strip().splitlines()[-3:]
        return AttemptOutcome(
            status="FAILED",
            error_id="NonZeroExit",
            error_message=f"command exited with status {result.returncode}"
            + (f": {' | '.join(tail)}" if tail else ""),
        )
    for n, (data, target) in enumerate(outputs, start=1):
        upload(ctx.storage, data, place.collect(target, ctx.work_dir / f"collected{n}"))
    return AttemptOutcome(status="FINISHED")


@activity("ShellCommandActivity")
def run_shell(ctx: AttemptContext) -> AttemptOutcome:
    return run_shell_like(ctx)


# --- CopyActivity -----------------------------------------------------------------------------


@activity("CopyActivity")
def run_copy(ctx: AttemptContext) -> AttemptOutcome:
    from tailrace.runtime import sql

    comp = ctx.component
    inputs, outputs = comp.refs("input"), comp.refs("output")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ActivityError("CopyActivity takes exactly one input and one output", _loc(ctx, "input"))
    in_type = ctx.resolved.objects[inputs[0]].type
    out_type = ctx.resolved.objects[outputs[0]].type
    if out_type == "SqlDataNode":
        count = sql.copy_store_to_sql(ctx, node_for(ctx, inputs[0]), outputs[0])
        ctx.log.write(f"copied {count} record(s) into {outputs[0]}\n")
        return AttemptOutcome(status="FINISHED", summary={"rows_written": count})
    dst = node_for(ctx, outputs[0])
    staging = Path(tempfile.mkdtemp(dir=ctx.work_dir, prefix="copy-"))
    try:
        if in_type == "SqlDataNode":
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
