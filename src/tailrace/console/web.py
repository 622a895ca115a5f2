"""Request plumbing shared by the console's pages: who is asking, error pages, responses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tailrace.api.errors import NotFoundRoute
from tailrace.console.auth import Session, context_of, csrf_ok, session_of
from tailrace.console.context import ConsoleContext
from tailrace.console.forms import BadForm, FormTooLarge
from tailrace.console.html import Markup, fmt, shell
from tailrace.errors import NotFoundError, TailraceError
from tailrace.state.records import StoreBusy

log = logging.getLogger("tailrace.console")
CSRF_REFUSED = "The form's CSRF token is missing or wrong; reload the page and try again."

Handler = Callable[[Request, ConsoleContext, Session], Awaitable[Response]]


class Refused(Exception):
    """Answered with an error page: status and a message for the viewer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def html(
    body: Markup, *, title: str, session: Session | None, status: int = 200, scripts: tuple[str, ...] = ()
) -> Response:
    return HTMLResponse(shell(title, body, session, scripts=scripts), status_code=status)


def error_page(status: int, message: str, session: Session | None) -> Response:
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found", 413: "Too large", 503: "Busy"}
    title = titles.get(status, "Error")
    body = fmt(
        '<h1>{t}</h1><p class="error">{m}</p><p><a href="/console">Back to the pipelines</a></p>',
        t=title,
        m=message,
    )
    return html(body, title=title, session=session, status=status)


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Blocking work (the store, the service) off the event loop."""
    return await run_in_threadpool(functools.partial(fn, *args, **kwargs))


def page(*, write: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: a session is required (a page redirects to the sign-in form), `write`
    also needs a role that may act and the session's CSRF token; another owner's or a missing
    pipeline is a 404, bad input a 400 naming it, never a server error."""

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            ctx = context_of(request)
            session = await session_of(request)
            if session is None:
                if request.method == "GET":
                    return RedirectResponse("/console/login?next=" + _next(request), status_code=303)
                return error_page(403, "You are not signed in (or your session has expired).", None)
            try:
                if write:
                    if session.role == "readonly":
                        raise Refused(403, "Your role is read-only: it cannot change pipelines.")
                    if not await csrf_ok(request, session):
                        raise Refused(403, CSRF_REFUSED)
                _refuse_control_characters(request)
                return await fn(request, ctx, session)
            except Refused as exc:
                return error_page(exc.status, exc.message, session)
            except FormTooLarge as exc:
                return error_page(413, str(exc), session)
            except BadForm as exc:
                return error_page(400, str(exc), session)
            except TailraceError as exc:
                status = 404 if isinstance(exc, NotFoundError | NotFoundRoute) else 400
                status = 503 if isinstance(exc, StoreBusy) else status
                return error_page(status, str(exc), session)
            except Exception:
                log.exception("console: %s %s failed", request.method, request.url.path)
                return error_page(500, "Something went wrong on the server; it has been logged.", session)

        return endpoint

    return wrap


def _next(request: Request) -> str:
    from urllib.parse import quote

    path = request.url.path + (("?" + request.url.query) if request.url.query else "")
    return quote(path, safe="")


def _refuse_control_characters(request: Request) -> None:
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in str(value)):
            raise Refused(400, f"{name} must not contain control characters")
