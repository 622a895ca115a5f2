"""HTML as text with every value escaped: `fmt` escapes each argument unless it is `Markup`
(already built by these helpers), so an id, field value or log line is never markup."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from tailrace.console.auth import Session


class Markup(str):
    """Text that is already HTML (built by fmt/join from escaped parts)."""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(template: str, **values: Any) -> Markup:
    """`template.format(**values)` with every value escaped unless it is Markup."""
    return Markup(template.format(**{k: v if isinstance(v, Markup) else esc(v) for k, v in values.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(sep.join(p if isinstance(p, Markup) else esc(p) for p in parts))


def q(value: str) -> str:
    """A path segment (ids may hold @, : and spaces)."""
    return quote(value, safe="")


def csrf_field(session: Session) -> Markup:
    return fmt('<input type="hidden" name="csrf" value="{t}">', t=session.csrf)


def shell(title: str, body: Markup, session: Session | None, *, scripts: Iterable[str] = ()) -> Markup:
    """A whole page: header, the live stream's mount point, and our own scripts (no inline
    script anywhere: the Content-Security-Policy allows only files from /console/static)."""
    user = Markup("")
    if session is not None:
        user = fmt(
            '<span class="who">{name}{ro}</span>'
            '<form method="post" action="/console/logout" class="inline">{csrf}'
            '<button type="submit">Sign out</button></form>',
            name=session.name,
            ro=" (read-only)" if session.role == "readonly" else "",
            csrf=csrf_field(session),
        )
    extra = join(fmt('<script src="/console/static/{s}" type="module"></script>', s=s) for s in scripts)
    return fmt(
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="csrf-token" content="{csrf}">'
        "<title>{title} · tailrace</title>"
        '<link rel="icon" href="/console/static/icon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/console/static/console.css">'
        '<link rel="stylesheet" href="/console/static/live.css"></head>'
        '<body><header><a class="brand" href="/console">tailrace</a>'
        '<nav><a href="/console">Pipelines</a> <a href="/console/new">New pipeline</a></nav>{user}</header>'
        '<div id="tr-live" data-stream="/console/live/stream"></div>'
        "<main>{body}</main>"
        '<script src="/console/static/live.js" type="module"></script>{extra}'
        "</body></html>",
        csrf=session.csrf if session else "",
        title=title,
        user=user,
        body=body,
        extra=extra,
    )


STATUS_CLASS = {
    "FINISHED": "ok",
    "RUNNING": "run",
    "WAITING_FOR_RUNNER": "wait",
    "WAITING_ON_DEPENDENCIES": "wait",
    "SCHEDULED": "wait",
    "CREATING": "wait",
    "PENDING": "wait",
    "FAILED": "fail",
    "CASCADE_FAILED": "fail",
    "TIMEDOUT": "fail",
    "CANCELED": "cancel",
    "SKIPPED": "skip",
    "PAUSED": "pause",
}


def status_class(status: str | None) -> str:
    return "st-" + STATUS_CLASS.get(str(status or ""), "other")
