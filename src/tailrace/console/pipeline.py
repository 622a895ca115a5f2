"""The pipeline page: graph, object pane, instance grid, an instance's attempts and logs.

Reads go through the REST API's own handlers (tailrace.api.rest) as the signed-in owner, so
ownership and paging are the API's; the graph is drawn here (graph.py).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from tailrace.console import graph
from tailrace.console.auth import Session
from tailrace.console.context import ConsoleContext
from tailrace.console.html import Markup, csrf_field, fmt, join, q, status_class
from tailrace.console.web import Refused, html, page, run
from tailrace.definition import Ref, from_wire, resolve
from tailrace.errors import TailraceError

log = logging.getLogger("tailrace.console")

GRID_PERIODS = 60
LOG_WINDOW = 64 * 1024


def _read(ctx: ConsoleContext, session: Session, pid: str, query: dict[str, str]) -> dict[str, Any]:
    path = {"pipeline_id": pid}
    out: dict[str, Any] = {"pipeline": ctx.call(ctx.rest.pipeline, session, path)}
    out["graph"] = ctx.call(ctx.rest.graph, session, path)
    grid_query = {"limit": str(GRID_PERIODS), **({"to": query["to"]} if query.get("to") else {})}
    out["grid"] = ctx.call(ctx.rest.grid, session, path, grid_query)
    iid = query.get("instance")
    if iid:
        out["instance"] = ctx.call(ctx.rest.instance, session, {**path, "instance_id": iid})
        aid = query.get("attempt") or next(
            (a["id"] for a in reversed(out["instance"]["attempts"]) if a["hasLog"]), None
        )
        attempt = next((a for a in out["instance"]["attempts"] if a["id"] == aid), None)
        if aid and attempt is None:
            raise Refused(404, f"attempt {aid!r} is not an attempt of instance {iid!r}")
        if attempt is not None and attempt["hasLog"]:
            out["attempt"] = attempt
            out["log"] = _log(ctx, session, pid, attempt["id"])
    oid = query.get("object")
    if oid:
        out["object"] = _object(ctx, session, pid, oid, _instance_of(out["grid"], oid, iid))
    return out


def _instance_of(grid: dict[str, Any], oid: str, chosen: str | None) -> str | None:
    """The instance of `oid` to evaluate expressions for: the one of the chosen instance's
    period (or the chosen one itself), else the newest on the grid's page."""
    periods = grid["periods"]
    if chosen:
        for p in periods:
            if any(c["id"] == chosen for c in p["cells"].values()):
                cell = p["cells"].get(oid)
                return str(cell["id"]) if cell else None
    return next((str(p["cells"][oid]["id"]) for p in periods if oid in p["cells"]), None)


def _log(ctx: ConsoleContext, session: Session, pid: str, aid: str) -> dict[str, Any]:
    try:
        resp = ctx.call(
            ctx.rest.attempt_log, session, {"pipeline_id": pid, "attempt_id": aid}, {"tail": str(LOG_WINDOW)}
        )
    except TailraceError as exc:
        return {"error": str(exc)}
    return {
        "text": bytes(resp.body).decode("utf-8", errors="replace"),
        "offset": int(resp.headers["x-tailrace-offset"]),
        "next": int(resp.headers["x-tailrace-next-offset"]),
    }


def _object(ctx: ConsoleContext, session: Session, pid: str, oid: str, iid: str | None) -> dict[str, Any]:
    """The object's fields: its own, then inherited ones (marked), with each expression
    evaluated for the chosen instance (EvaluateExpression, the API's own handler)."""
    wire = ctx.operations.get_pipeline_definition(ctx.caller(session), {"pipelineId": pid})
    rdef = resolve(from_wire(wire, source=pid))
    obj = rdef.get(oid)
    if obj is None:
        raise Refused(404, f"object {oid!r} is not in the definition of pipeline {pid!r}")
    own = dict(obj.own.fields) if obj.own is not None else {}
    target = iid or oid
    rows = []
    for key, value in sorted(obj.fields.items(), key=lambda kv: (kv[0] not in own, kv[0])):
        evaluated = None
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, str) and "#{" in item:
                try:
                    result = ctx.operations.evaluate_expression(
                        ctx.caller(session), {"pipelineId": pid, "objectId": target, "expression": item}
                    )
                    evaluated = (evaluated + ", " if evaluated else "") + result["evaluatedExpression"]
                except TailraceError as exc:
                    evaluated = f"(cannot evaluate for {target}: {exc})"
                except Exception as exc:  # shown on the page, never a server error for a view
                    log.warning("console: evaluating %s of %s failed", key, target, exc_info=True)
                    evaluated = f"(cannot evaluate for {target}: {type(exc).__name__})"
        rows.append({"key": key, "value": value, "inherited": key not in own, "evaluated": evaluated})
    return {"id": oid, "name": obj.name, "type": obj.type, "rows": rows, "for": target}


def _value(value: Any, params: dict[str, str]) -> Markup:
    if isinstance(value, Ref):
        return fmt('<a href="?{h}#pane">→ {id}</a>', h=urlencode({**params, "object": value.id}), id=value.id)
    if isinstance(value, tuple | list):
        return join((_value(v, params) for v in value), ", ")
    return fmt("<code>{v}</code>", v=value)


def _object_pane(obj: dict[str, Any], params: dict[str, str]) -> Markup:
    rows = join(
        fmt(
            '<tr class="{c}"><th>{k}{mark}</th><td>{v}{ev}</td></tr>',
            c="inherited" if r["inherited"] else "own",
            k=r["key"],
            mark=Markup(' <span class="tag" title="inherited from Default or a parent">inherited</span>')
            if r["inherited"]
            else "",
            v=_value(r["value"], params),
            ev=fmt('<div class="evaluated">= <code>{e}</code></div>', e=r["evaluated"])
            if r["evaluated"] is not None
            else "",
        )
        for r in obj["rows"]
    )
    return fmt(
        '<section class="card" id="pane"><h2>{id} <span class="sub">{type}</span></h2>'
        '<p class="sub">Expressions evaluated for <code>{target}</code> (choose an instance in the grid).</p>'
        '<table class="fields" id="object-fields">{rows}</table></section>',
        id=obj["id"],
        type=obj["type"] or "",
        target=obj["for"],
        rows=rows,
    )


def _grid(pid: str, grid: dict[str, Any], params: dict[str, str], selected: str | None) -> Markup:
    periods = list(reversed(grid["periods"]))  # oldest on the left
    if not periods:
        return Markup('<p class="empty">No instances yet: activate the pipeline to schedule its periods.</p>')
    head = join(
        fmt(
            '<th title="{s} – {e}">{d}</th>',
            s=p["scheduledStartTime"],
            e=p["scheduledEndTime"],
            d=p["scheduledStartTime"][5:16],
        )
        for p in periods
    )
    base = {k: v for k, v in params.items() if k in ("to", "object")}
    body = []
    for comp in grid["components"]:
        cells = []
        for p in periods:
            cell = p["cells"].get(comp["id"])
            if cell is None:
                cells.append(Markup("<td></td>"))
                continue
            tries = cell["attemptCount"]
            cells.append(
                fmt(
                    '<td><a class="cell {cls}{sel}" data-iid="{iid}" href="?{h}#instance" title="{iid}: {st}{err}">{n}</a></td>',
                    cls=status_class(cell["status"]),
                    sel=" selected" if cell["id"] == selected else "",
                    iid=cell["id"],
                    h=urlencode({**base, "instance": cell["id"]}),
                    st=cell["status"],
                    err=f" — {cell['errorMessage']}" if cell.get("errorMessage") else "",
                    n=tries if tries > 1 else "",
                )
            )
        body.append(
            fmt(
                '<tr><th class="rowhead" title="{t}">{id}</th>{c}</tr>',
                t=comp["type"] or "",
                id=comp["id"],
                c=join(cells),
            )
        )
    older = (
        fmt('<a href="?{h}#grid">Older periods →</a>', h=urlencode({**base, "to": grid["nextTo"]}))
        if grid.get("hasMore")
        else Markup("")
    )
    latest = (
        fmt('<a href="?{h}#grid">Latest</a>', h=urlencode({k: v for k, v in base.items() if k != "to"}))
        if params.get("to")
        else Markup("")
    )
    legend = Markup(
        '<p class="legend"><span class="cell st-ok"></span>finished <span class="cell st-run"></span>running '
        '<span class="cell st-wait"></span>waiting <span class="cell st-fail"></span>failed '
        '<span class="cell st-cancel"></span>canceled <span class="cell st-skip"></span>skipped; '
        "a number is the attempt count</p>"
    )
    return fmt(
        '<div class="grid-wrap"><table class="grid" id="instance-grid" data-pipeline="{pid}"><thead><tr><th></th>{head}</tr></thead>'
        '<tbody>{body}</tbody></table></div>{legend}<p class="pager">{latest} {older}</p>',
        pid=pid,
        head=head,
        body=join(body),
        legend=legend,
        latest=latest,
        older=older,
    )


def _instance_pane(pid: str, data: dict[str, Any], params: dict[str, str], session: Session) -> Markup:
    inst = data["instance"]
    attempts = join(
        fmt(
            '<tr class="{cls}"><td>{n}</td><td class="{sc}">{st}</td><td>{start}</td><td>{end}</td><td>{err}</td><td>{log}</td></tr>',
            cls="selected" if data.get("attempt", {}).get("id") == a["id"] else "",
            n=a["number"],
            sc=status_class(a["status"]),
            st=a["status"],
            start=a["startedAt"] or "",
            end=a["endedAt"] or "",
            err=" ".join(x for x in (a["errorId"], a["errorMessage"]) if x),
            log=fmt('<a href="?{h}#log">log</a>', h=urlencode({**params, "attempt": a["id"]}))
            if a["hasLog"]
            else "",
        )
        for a in inst["attempts"]
    )
    buttons = Markup("")
    if session.role != "readonly":
        buttons = join(
            fmt(
                '<form method="post" action="/console/pipelines/{qp}/actions/{a}" class="inline">{csrf}'
                '<input type="hidden" name="instance" value="{iid}"><button type="submit">{label}</button></form>',
                qp=q(pid),
                a=action,
                csrf=csrf_field(session),
                iid=inst["id"],
                label=label,
            )
            for action, label in (
                ("rerun", "Rerun"),
                ("cancel", "Cancel"),
                ("mark-finished", "Mark finished"),
            )
        )
    log = Markup("")
    if "log" in data:
        entry = data["log"]
        attempt = data["attempt"]
        if "error" in entry and attempt["status"] == "RUNNING":
            # Not written yet: the page follows it from offset 0 and shows it when it appears.
            log = fmt(
                '<h3>Log of attempt {n}</h3><p class="sub" id="log-note">The log appears here as the runner writes it.</p>'
                '<pre id="log" class="log" data-url="/console/pipelines/{qp}/attempts/{qa}/log" data-next="0" '
                'data-follow="1"></pre>',
                n=attempt["number"],
                qp=q(pid),
                qa=q(attempt["id"]),
            )
        elif "error" in entry:
            log = fmt('<p class="error" id="log">{e}</p>', e=entry["error"])
        else:
            log = fmt(
                '<h3>Log of attempt {n}{cut}</h3><pre id="log" class="log" data-url="/console/pipelines/{qp}/attempts/{qa}/log" '
                'data-next="{next}" data-follow="{follow}">{text}</pre>',
                n=attempt["number"],
                cut=f" (the last {entry['next'] - entry['offset']:,} bytes)" if entry["offset"] else "",
                qp=q(pid),
                qa=q(attempt["id"]),
                next=entry["next"],
                follow="1" if attempt["status"] == "RUNNING" else "",
                text=entry["text"],
            )
    return fmt(
        '<section class="card" id="instance"><h2>Instance {id}</h2>'
        '<p><span class="badge {sc}" data-iid="{id}">{st}</span> {start} – {end}; tries left {tries}{err}</p>'
        '<div class="actions">{buttons}</div>'
        '<table class="list attempts"><thead><tr><th>#</th><th>Status</th><th>Started</th><th>Ended</th><th>Error</th><th></th></tr></thead>'
        "<tbody>{attempts}</tbody></table>{log}</section>",
        id=inst["id"],
        sc=status_class(inst["status"]),
        st=inst["status"],
        start=inst["scheduledStartTime"],
        end=inst["scheduledEndTime"],
        tries=inst["triesLeft"],
        err=fmt(' — <span class="error">{e}</span>', e=inst["errorMessage"])
        if inst.get("errorMessage")
        else "",
        buttons=buttons,
        attempts=attempts,
        log=log,
    )


def _header(p: dict[str, Any], session: Session) -> Markup:
    actions = Markup("")
    if session.role != "readonly":
        qp = q(p["id"])
        csrf = csrf_field(session)
        activate = fmt(
            '<form method="post" action="/console/pipelines/{qp}/actions/activate" class="inline" id="activate-form">{csrf}'
            '<label>start (optional) <input name="start" placeholder="2012-12-24T00:00:00" size="19"></label>'
            '<button type="submit">Activate…</button></form>',
            qp=qp,
            csrf=csrf,
        )
        deactivate = fmt(
            '<form method="post" action="/console/pipelines/{qp}/actions/deactivate" class="inline">{csrf}'
            '<button type="submit">Deactivate…</button></form>',
            qp=qp,
            csrf=csrf,
        )
        actions = fmt('<div class="actions">{a}{d}</div>', a=activate, d=deactivate)
    return fmt(
        '<h1>{name}</h1><p class="sub">{id} · owner {owner}</p>'
        '<p>State <b id="pipeline-state">{state}</b> · health <b class="{hc}">{health}</b> · last run {last} · next run {next}</p>{actions}',
        name=p["name"],
        id=p["id"],
        owner=p["owner"],
        state=p["state"],
        hc="st-fail" if p.get("healthStatus") == "ERROR" else "st-ok",
        health=p.get("healthStatus") or "—",
        last=p.get("latestRunTime") or "—",
        next=p.get("nextRunTime") or "—",
        actions=actions,
    )


@page()
async def pipeline_page(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    pid = request.path_params["pipeline_id"]
    params = {
        k: v for k, v in request.query_params.items() if k in ("to", "object", "instance", "attempt") and v
    }
    data = await run(_read, ctx, session, pid, params)
    g = data["graph"]
    nodes = [
        graph.Node(id=n["id"], name=n["name"] or n["id"], type=n["type"] or "", category=n["category"] or "")
        for n in g["nodes"]
    ]
    shown = [n for n in nodes if graph.kind(n.category, n.type) != "other"]
    others = [n for n in nodes if graph.kind(n.category, n.type) == "other"]
    edges = graph.edges_of(shown, [(e["from"], e["field"], e["to"]) for e in g["edges"]])
    link = {k: v for k, v in params.items() if k in ("to", "instance")}
    svg = graph.render(shown, edges, selected=params.get("object"), link_params=link)
    other_links = join(
        (fmt('<a href="?{h}#pane">{id}</a>', h=urlencode({**link, "object": n.id}), id=n.id) for n in others),
        " · ",
    )
    parts = [
        _header(data["pipeline"], session),
        fmt(
            '<section class="card"><h2>Graph</h2><div class="graph-wrap" id="graph">{svg}</div>'
            '<p class="legend">Other objects: {others}</p></section>',
            svg=svg,
            others=other_links or "none",
        ),
    ]
    if "object" in data:
        parts.append(_object_pane(data["object"], link))
    parts.append(
        fmt(
            '<section class="card" id="grid"><h2>Instances</h2>{g}</section>',
            g=_grid(pid, data["grid"], params, params.get("instance")),
        )
    )
    if "instance" in data:
        parts.append(_instance_pane(pid, data, params, session))
    return html(join(parts), title=data["pipeline"]["name"], session=session, scripts=("console.js",))


@page()
async def attempt_log(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    """A window of an attempt's log as plain text (the REST API's reader, by offset)."""
    query = {k: v for k, v in request.query_params.items() if k in ("offset", "limit", "tail")}
    resp: Response = await run(ctx.call, ctx.rest.attempt_log, session, dict(request.path_params), query)
    return resp
