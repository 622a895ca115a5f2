"""The pipeline list and the new-pipeline page (from the seed template or an uploaded file)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tailrace.console.auth import Session, csrf_ok
from tailrace.console.context import ConsoleContext
from tailrace.console.forms import FORM_LIMIT, read_form
from tailrace.console.html import Markup, csrf_field, fmt, join, q
from tailrace.console.web import CSRF_REFUSED, Refused, html, page, run
from tailrace.definition import (
    DefinitionError,
    PipelineDefinition,
    Problem,
    ValidationReport,
    loads,
    validate,
)
from tailrace.state import Status

FAILED = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.TIMEDOUT})
_PERIOD = re.compile(r"^\d{1,4} (minutes?|hours?|days?|weeks?|months?|years?)$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


# --- the list --------------------------------------------------------------------------------


def _list_rows(
    ctx: ConsoleContext, session: Session, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    query = {"limit": "50", **({"after": after} if after else {})}
    listing = ctx.call(ctx.rest.pipelines, session, {}, query)
    since = ctx.clock.now() - timedelta(days=1)
    rows = []
    with ctx.store.transaction(readonly=True) as tx:
        for item in listing["pipelines"]:
            failed = [
                i
                for i in tx.instances.in_status(item["id"], FAILED)
                if i.ended_at is not None and i.ended_at >= since
            ]
            schedule = _schedule_text(tx, item["id"], item.get("activeVersion") or item.get("latestVersion"))
            rows.append({**item, "failedLastDay": len(failed), "schedule": schedule})
    return rows, listing["next"]


def _schedule_text(tx: Any, pipeline_id: str, version: int | None) -> str:
    if version is None:
        return ""
    stored = tx.definitions.find(pipeline_id, version)
    if stored is None:
        return ""
    parts = []
    for obj in stored.wire.get("pipelineObjects", []):
        fields = {f["key"]: f.get("stringValue") for f in obj.get("fields", [])}
        if fields.get("type") == "Schedule":
            every = fields.get("period") or ""
            parts.append(f"every {every}" if every else obj.get("id", ""))
        elif fields.get("scheduleType", "").lower() == "ondemand":
            parts.append("on demand")
    return ", ".join(dict.fromkeys(parts))


@page()
async def pipelines(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    rows, more = await run(_list_rows, ctx, session, request.query_params.get("after"))
    trs = [
        fmt(
            '<tr data-pipeline="{id}"><td><a href="/console/pipelines/{qid}">{name}</a><div class="sub">{id}</div></td>'
            '<td class="state">{state}</td><td>{schedule}</td><td class="{hc}">{health}</td>'
            '<td>{last}</td><td>{next}</td><td class="failures{fc}">{failed}</td><td>{owner}</td></tr>',
            id=r["id"],
            qid=q(r["id"]),
            name=r["name"],
            state=r["state"],
            schedule=r["schedule"],
            hc="st-fail" if r.get("healthStatus") == "ERROR" else "st-ok" if r.get("healthStatus") else "",
            health=r.get("healthStatus") or "—",
            last=r.get("latestRunTime") or "—",
            next=r.get("nextRunTime") or "—",
            fc=" st-fail" if r["failedLastDay"] else "",
            failed=r["failedLastDay"],
            owner=r["owner"],
        )
        for r in rows
    ]
    table = (
        fmt(
            '<table class="list" id="pipelines"><thead><tr><th>Pipeline</th><th>State</th><th>Schedule</th>'
            "<th>Health</th><th>Last run</th><th>Next run</th><th>Failed (24 h)</th><th>Owner</th></tr></thead>"
            "<tbody>{rows}</tbody></table>",
            rows=join(trs),
        )
        if trs
        else Markup('<p class="empty">No pipelines yet. <a href="/console/new">Create one</a>.</p>')
    )
    pager = fmt('<p><a href="/console?after={a}">Next page</a></p>', a=more) if more else Markup("")
    body = fmt("<h1>Pipelines</h1>{t}{p}", t=table, p=pager)
    return html(body, title="Pipelines", session=session, scripts=("console.js",))


# --- new pipeline ------------------------------------------------------------------------------


def template_text(name: str, start: str, period: str, end: str) -> str:
    """The seed log pipeline with its parameters filled in (start, period, optional end)."""
    from tailrace.sample.demo import seed_definition_text

    doc = json.loads(seed_definition_text())
    for obj in doc["objects"]:
        if obj.get("type") == "Schedule":
            obj["startDateTime"] = start
            obj["period"] = period
            if end:
                obj["endDateTime"] = end
    return json.dumps(doc)


def _new_form(session: Session, values: dict[str, str] | None = None) -> Markup:
    v = {"name": "web logs", "start": "2012-12-24T00:00:00", "period": "1 Days", "end": "2012-12-27T00:00:00"}
    v.update(values or {})
    return fmt(
        "<h1>New pipeline</h1>"
        '<section class="card"><h2>From the seed log pipeline</h2>'
        "<p>Two HiveActivities (archive, stats) over the access logs of each period, on an EmrCluster.</p>"
        '<form method="post" action="/console/new" class="form" id="from-template">{csrf}'
        '<input type="hidden" name="source" value="template">'
        '<label>Name <input name="name" required maxlength="1024" value="{name}"></label>'
        '<label>Schedule start <input name="start" required value="{start}" pattern="\\d{{4}}-\\d{{2}}-\\d{{2}}T\\d{{2}}:\\d{{2}}:\\d{{2}}"></label>'
        '<label>Period <input name="period" required value="{period}"></label>'
        '<label>Schedule end (optional) <input name="end" value="{end}"></label>'
        '<button type="submit">Create</button></form></section>'
        '<section class="card"><h2>From a definition file</h2>'
        '<form method="post" action="/console/new" enctype="multipart/form-data" class="form" id="from-file">{csrf}'
        '<input type="hidden" name="source" value="file">'
        '<label>Name <input name="name" required maxlength="1024"></label>'
        '<label>Definition (JSON, at most {limit} KiB) <input type="file" name="definition" accept=".json,application/json" required></label>'
        '<button type="submit">Upload and create</button></form></section>',
        csrf=csrf_field(session),
        limit=1024,
        **v,
    )


@page()
async def new_form(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    if session.role == "readonly":
        raise Refused(403, "Your role is read-only: it cannot create pipelines.")
    return html(_new_form(session), title="New pipeline", session=session)


def problems_html(report: ValidationReport, definition: PipelineDefinition | None) -> Markup:
    """Errors and warnings grouped under the object they concern, with its fields."""
    by_object: dict[str | None, list[Problem]] = {}
    for p in report.problems:
        by_object.setdefault(p.object_id, []).append(p)
    objects = {o.id: o for o in definition.objects} if definition is not None else {}
    sections = []
    for oid, problems in by_object.items():
        items = join(
            fmt(
                '<li class="{sev}"><b>{s}</b> {field}{msg}{where}</li>',
                sev=p.severity,
                s=p.severity.upper(),
                field=fmt("<code>{f}</code>: ", f=p.field) if p.field else "",
                msg=p.message,
                where=f" ({p.where})" if p.where else "",
            )
            for p in problems
        )
        obj = objects.get(oid) if oid else None
        fields = Markup("")
        if obj is not None:
            bad = {p.field for p in problems}
            fields = fmt(
                '<table class="fields">{rows}</table>',
                rows=join(
                    fmt(
                        '<tr class="{c}"><th>{k}</th><td>{v}</td></tr>',
                        c="bad" if k in bad else "",
                        k=k,
                        v=_show(v),
                    )
                    for k, v in obj.fields.items()
                ),
            )
        sections.append(
            fmt(
                '<section class="problem-object" data-object="{oid}"><h3>{title}</h3><ul>{items}</ul>{fields}</section>',
                oid=oid or "",
                title=f"object {oid}" if oid else "the file",
                items=items,
                fields=fields,
            )
        )
    return join(sections)


def _show(value: Any) -> str:
    from tailrace.definition import Ref

    if isinstance(value, Ref):
        return f"→ {value.id}"
    if isinstance(value, tuple | list):
        return ", ".join(_show(v) for v in value)
    return str(value)


@page()
async def create(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    # The write checks of page(write=True), with the upload's own size limit: the CSRF token
    # is in the form, read only up to that limit.
    if session.role == "readonly":
        raise Refused(403, "Your role is read-only: it cannot create pipelines.")
    form = await read_form(request, ctx.upload_limit + FORM_LIMIT)
    if not await csrf_ok(request, session):
        raise Refused(403, CSRF_REFUSED)
    name = form.get("name").strip()
    values = {k: form.get(k).strip() for k in ("name", "start", "period", "end")}
    if not name:
        raise Refused(400, "name: give the pipeline a name")
    if form.get("source") == "file":
        upload = form.files.get("definition")
        if upload is None or not upload.data:
            raise Refused(400, "definition: choose a JSON file to upload")
        raw = upload.data
        if len(raw) > ctx.upload_limit:
            raise Refused(413, f"the definition is larger than {ctx.upload_limit:,} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(400, f"definition: the file is not UTF-8 text (byte {exc.start})")
        source = upload.filename or "upload"
    else:
        for key, pattern, example in (("start", _DATE, "2012-12-24T00:00:00"), ("period", _PERIOD, "1 Days")):
            if not pattern.match(values[key]):
                raise Refused(400, f"{key}: expected a value like {example}, got {values[key]!r}")
        if values["end"] and not _DATE.match(values["end"]):
            raise Refused(400, f"end: expected a value like 2012-12-27T00:00:00, got {values['end']!r}")
        text = template_text(name, values["start"], values["period"], values["end"])
        source = "seed log pipeline"
    outcome = await run(_create, ctx, session, name, text, source)
    if isinstance(outcome, str):
        return RedirectResponse(f"/console/pipelines/{q(outcome)}", status_code=303)
    report, definition = outcome
    body_html = fmt(
        '<h1>The definition has errors</h1><p class="error">Nothing was created: fix these and try again.</p>'
        '<div id="problems">{p}</div>{form}',
        p=problems_html(report, definition),
        form=_new_form(session, values),
    )
    return html(body_html, title="Invalid definition", session=session, status=400)


def _create(
    ctx: ConsoleContext, session: Session, name: str, text: str, source: str
) -> str | tuple[ValidationReport, PipelineDefinition | None]:
    """The new pipeline's id, or the report of a definition that cannot be put."""
    import uuid

    try:
        definition = loads(text, source=source)
    except DefinitionError as exc:
        return exc.report, None
    report = validate(definition, definition.values, limits=ctx.service.limits)
    if report.errored:
        return report, definition
    caller = ctx.caller(session)
    created = ctx.operations.create_pipeline(caller, {"name": name, "uniqueId": f"console-{uuid.uuid4()}"})
    pid = str(created["pipelineId"])
    final = ctx.service.put_definition(pid, definition)
    if final.errored:  # the service's own checks found more: keep nothing half made
        ctx.service.delete_pipeline(pid)
        return final, definition
    return pid
