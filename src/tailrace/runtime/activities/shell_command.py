"""ShellCommandActivity (and, through run_shell_like, ShellCommandPrecondition): a command or
a script from scriptUri, with input and output nodes staged in local directories."""

from __future__ import annotations

from pathlib import Path

from tailrace.runtime.activities.common import flag, location, node_for
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.sandbox import ShellPlace, shell_place
from tailrace.runtime.shell import run_command
from tailrace.runtime.staging import ActivityError, NodeData, download, require_exists, upload


def register(registry: ActivityRegistry) -> None:
    registry.register("ShellCommandActivity", run_shell)


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
            raise ActivityError("needs 'command' or 'scriptUri'", location(ctx, "command"))
        script = work / "script.sh"
        script.write_bytes(ctx.storage.read_bytes(uri))
        script.chmod(0o755)
        place.hand_over(script)
        argv = ["/bin/bash", str(script), *args]
    else:
        argv = ["/bin/bash", "-c", command, "bash", *args]
    extra = {"TAILRACE_PIPELINE_ID": ctx.pipeline_id, "TAILRACE_INSTANCE_ID": ctx.instance.id}
    stage = flag(ctx.field("stage"), False) and not precondition
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


def run_shell(ctx: AttemptContext) -> AttemptOutcome:
    return run_shell_like(ctx)
