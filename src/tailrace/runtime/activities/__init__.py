"""Running one attempt of an activity or precondition instance, in-process.

`execute_attempt(ctx)` is the attempt boundary: whatever happens inside becomes an
AttemptOutcome (with the error and its stack trace), never an exception. The kinds that can
run are in one registry (registry.py), one module per kind.
"""

from __future__ import annotations

import traceback

from tailrace.definition import Category
from tailrace.errors import TailraceError
from tailrace.runtime.activities.registry import ActivityRegistry, Role, UnknownKind, builtin_registry
from tailrace.runtime.context import AttemptContext, AttemptOutcome

__all__ = ["execute_attempt"]


def execute_attempt(ctx: AttemptContext, registry: ActivityRegistry | None = None) -> AttemptOutcome:
    """Run one attempt; every failure is reported in the outcome (an unexpected one with its
    stack trace in errorStackTrace)."""
    inst = ctx.instance
    role = Role.PRECONDITION if inst.category is Category.PRECONDITION else Role.ACTIVITY
    try:
        runner = (registry or builtin_registry()).lookup(inst.type, role)
    except UnknownKind as exc:
        return AttemptOutcome(
            status="FAILED", error_id="UnsupportedType", error_message=f"object '{inst.component_id}': {exc}"
        )
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        return runner(ctx)
    except TailraceError as exc:
        # The user's error (a bad script, a missing input): its message says what and where;
        # a stack trace of tailrace's code would only hide it.
        ctx.log.write(f"ERROR {exc}\n")
        return AttemptOutcome(status="FAILED", error_id=type(exc).__name__, error_message=str(exc))
    except Exception as exc:  # the attempt boundary: record anything, crash nothing
        trace = traceback.format_exc()  # for errorStackTrace (a bug report), not the log
        ctx.log.write(f"ERROR internal error: {type(exc).__name__}: {exc}\n")
        return AttemptOutcome(
            status="FAILED",
            error_id=type(exc).__name__,
            error_message=f"{type(exc).__name__}: {exc}",
            error_stack_trace=trace,
        )
