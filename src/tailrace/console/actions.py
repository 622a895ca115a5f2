"""Activate, deactivate, rerun, cancel and mark finished: each first shows what it would do
(the backfill preview, or the cascade of status changes from a dry run), then acts through the
AWS operations' own handlers (ownership checked there) once confirmed."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tailrace.clock import parse_dp
from tailrace.console.auth import Session
from tailrace.console.cascade import Change, dry_run
from tailrace.console.context import ConsoleContext
from tailrace.console.forms import read_form
from tailrace.console.html import Markup, csrf_field, fmt, join, q, status_class
from tailrace.console.web import Refused, html, page, run

INSTANCE_ACTIONS = {"rerun": "RERUN", "cancel": "TRY_CANCEL", "mark-finished": "MARK_FINISHED"}
LABELS = {
    "activate": "Activate",
    "deactivate": "Deactivate",
    "rerun": "Rerun",
    "cancel": "Cancel",
    "mark-finished": "Mark finished",
}
SHOWN_CHANGES = 200


def _preview(ctx: ConsoleContext, session: Session, pid: str, action: str, form: dict[str, str]) -> Markup:
    caller = ctx.caller(session)
    ctx.operations._pipeline(caller, pid)  # another owner's pipeline: not found, before any work
    if action == "activate":
        body: dict[str, Any] = {}
        if form.get("start"):
            body["startTimestamp"] = _start(form["start"]).timestamp()
        preview = ctx.call(
            ctx.rest.activation_preview,
            session,
            {"pipeline_id": pid},
            {"limit": "20"},
            json.dumps(body).encode(),
        )
        windows = join(
            fmt(
                "<tr><td>{s}</td><td>{e}</td><td>{n}</td></tr>",
                s=w["scheduledStartTime"],
                e=w["scheduledEndTime"],
                n=len(w["instances"]),
            )
            for w in preview["windows"]
        )
        return fmt(
            '<p id="preview-summary">Activating creates <b>{periods}</b> period(s){more} at once (<b>{inst}</b> instances){span}.</p>'
            '<table class="list"><thead><tr><th>Scheduled start</th><th>End</th><th>Instances</th></tr></thead><tbody>{w}</tbody></table>',
            periods=preview["periods"],
            more="" if preview["complete"] else " or more",
            inst=preview["instances"],
            span=f", from {preview['firstScheduledStart']} to {preview['lastScheduledStart']}"
            if preview["periods"]
            else "",
            w=windows,
        )
    if action == "deactivate":
        changes = dry_run(ctx.service, pid, lambda s: s.deactivate(pid))
    else:
        iid = form.get("instance", "")
        if not iid:
            raise Refused(400, "instance: choose an instance in the grid first")
        changes = dry_run(ctx.service, pid, lambda s: s.set_status(pid, [iid], INSTANCE_ACTIONS[action]))
    return _changes(changes)


def _changes(changes: list[Change]) -> Markup:
    if not changes:
        return Markup('<p id="preview-summary">No instance changes status.</p>')
    rows = join(
        fmt(
            '<tr><td>{iid}</td><td>{c}</td><td class="{bc}">{b}</td><td class="{ac}">{a}</td></tr>',
            iid=ch.instance_id,
            c=ch.component_id,
            bc=status_class(ch.before),
            b=ch.before,
            ac=status_class(ch.after),
            a=ch.after,
        )
        for ch in changes[:SHOWN_CHANGES]
    )
    more = f" (the first {SHOWN_CHANGES} shown)" if len(changes) > SHOWN_CHANGES else ""
    return fmt(
        '<p id="preview-summary"><b>{n}</b> instance(s) change status{more}:</p>'
        '<table class="list" id="cascade"><thead><tr><th>Instance</th><th>Component</th><th>Now</th><th>After</th></tr></thead>'
        "<tbody>{rows}</tbody></table>",
        n=len(changes),
        more=more,
        rows=rows,
    )


def _start(text: str) -> Any:
    try:
        return parse_dp(text.strip())
    except ValueError:
        raise Refused(400, f"start: expected a date-time like 2012-12-24T00:00:00, got {text!r}")


def _act(ctx: ConsoleContext, session: Session, pid: str, action: str, form: dict[str, str]) -> None:
    caller = ctx.caller(session)
    if action == "activate":
        p: dict[str, Any] = {"pipelineId": pid}
        if form.get("start"):
            p["startTimestamp"] = _start(form["start"])
        ctx.operations.activate_pipeline(caller, p)
    elif action == "deactivate":
        ctx.operations.deactivate_pipeline(caller, {"pipelineId": pid})
    else:
        iid = form.get("instance", "")
        if not iid:
            raise Refused(400, "instance: choose an instance in the grid first")
        ctx.operations.set_status(
            caller, {"pipelineId": pid, "objectIds": [iid], "status": INSTANCE_ACTIONS[action]}
        )


@page(write=True)
async def action(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    pid, name = request.path_params["pipeline_id"], request.path_params["action"]
    if name not in LABELS:
        raise Refused(404, f"no action {name!r}; one of {', '.join(LABELS)}")
    raw = await read_form(request)
    form = {k: v for k, v in raw.fields.items() if k in ("instance", "start", "confirm")}
    back = f"/console/pipelines/{q(pid)}"
    if form.get("instance"):
        from urllib.parse import urlencode

        back += "?" + urlencode({"instance": form["instance"]}) + "#instance"
    if form.get("confirm") == "yes":
        await run(_act, ctx, session, pid, name, form)
        return RedirectResponse(back, status_code=303)
    preview = await run(_preview, ctx, session, pid, name, form)
    hidden = join(
        fmt('<input type="hidden" name="{k}" value="{v}">', k=k, v=v)
        for k, v in form.items()
        if k != "confirm"
    )
    body = fmt(
        '<h1>{label} — confirm</h1><p class="sub">pipeline {pid}{what}</p><div id="preview">{preview}</div>'
        '<form method="post" action="/console/pipelines/{qp}/actions/{a}" class="inline" id="confirm-form">{csrf}{hidden}'
        '<input type="hidden" name="confirm" value="yes"><button type="submit" class="primary">{label}</button></form> '
        '<a href="{back}">Cancel</a>',
        label=LABELS[name],
        pid=pid,
        what=f", instance {form['instance']}" if form.get("instance") else "",
        preview=preview,
        qp=q(pid),
        a=name,
        csrf=csrf_field(session),
        hidden=hidden,
        back=back,
    )
    return html(body, title=f"{LABELS[name]} {pid}", session=session)
