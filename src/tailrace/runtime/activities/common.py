"""Helpers every kind may use: data nodes of this window, scripts, flags, error locations."""

from __future__ import annotations

from tailrace.errors import Location, TailraceError
from tailrace.expressions import Scope
from tailrace.plan import Window
from tailrace.runtime.context import AttemptContext
from tailrace.runtime.staging import ActivityError, NodeData, node_data


def node_scope(ctx: AttemptContext, node_id: str) -> Scope:
    """The node's own instance scope for this window (its `#{table}` is its own field)."""
    node = ctx.resolved.objects[node_id]
    window = ctx.scopes.planner.window_at(node, ctx.instance.scheduled_start)
    window = window or Window(
        index=0,
        start=ctx.instance.scheduled_start,
        end=ctx.instance.scheduled_end,
        run_at=ctx.instance.run_at,
    )
    return ctx.scopes.window_scope(node_id, window)


def node_field(ctx: AttemptContext, node_id: str, name: str) -> str | None:
    """A field of a data node, evaluated in the node's scope."""
    return ctx.field(name, node_scope(ctx, node_id), object_id=node_id)


def node_for(ctx: AttemptContext, node_id: str) -> NodeData:
    """The node's location evaluated in its own instance scope for this window."""
    node = ctx.resolved.objects[node_id]
    scope = node_scope(ctx, node_id)
    field = "directoryPath" if node.string("directoryPath") is not None else "filePath"
    uri = ctx.field(field, scope, object_id=node_id) if node.string(field) is not None else None
    return node_data(node, uri=uri, field=field, resolved=ctx.resolved)


def flag(text: str | None, default: bool) -> bool:
    """A boolean field as the service read it: true, 1 or yes (any case) are true."""
    if text is None:
        return default
    return text.strip().lower() in ("true", "1", "yes")


def location(ctx: AttemptContext, field: str) -> Location:
    """Where an error in a field of the running component is."""
    return Location(object_id=ctx.instance.component_id, field=field)


def script_text(ctx: AttemptContext, inline_field: str) -> tuple[str, str]:
    """The script and its source name: from the inline field (evaluated) or from scriptUri
    (read as is)."""
    inline = ctx.field(inline_field)
    if inline is not None:
        return inline, f"{ctx.instance.component_id}.{inline_field}"
    uri = ctx.field("scriptUri")
    if uri is None:
        raise ActivityError(f"needs '{inline_field}' or 'scriptUri'", location(ctx, inline_field))
    try:
        return ctx.storage.read_bytes(uri).decode("utf-8"), uri
    except TailraceError as exc:
        raise ActivityError(f"cannot read scriptUri {uri}: {exc}", location(ctx, "scriptUri"))
