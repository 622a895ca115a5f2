"""The console's routes, mounted by `tailrace up` and `tailrace console` on the API's app.

Every response under /console carries a Content-Security-Policy that allows scripts and styles
from /console/static only (no inline script), and refuses framing. A POST whose Origin is
another site is refused before anything else (login forms included).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from tailrace.clock import Clock
from tailrace.console import actions, logstream, pages, pipeline
from tailrace.console.auth import (
    COOKIE,
    SCOPE_KEY,
    Sessions,
    authorize,
    csrf_ok,
    register_context,
    session_of,
    set_cookie,
)
from tailrace.console.context import ConsoleContext
from tailrace.console.forms import BadForm, FormTooLarge, read_form
from tailrace.console.html import fmt
from tailrace.console.throttle import LoginThrottle, subjects
from tailrace.console.users import UserStore
from tailrace.console.web import error_page, html, run

if TYPE_CHECKING:
    from tailrace.api.keys import KeyStore
    from tailrace.runtime.service import PipelineService
    from tailrace.state import StateStore

log = logging.getLogger("tailrace.console")

CSP = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'"
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class _Guard:
    """ASGI wrapper: the console context in the scope, security headers on every response, and
    a POST from another origin refused."""

    def __init__(self, app: ASGIApp, ctx: ConsoleContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.ctx
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD") and not _same_origin(scope):
            response = error_page(403, "This request came from another site and was refused.", None)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _same_origin(scope: Scope) -> bool:
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not a browser's cross-site request (or an old browser: CSRF tokens still apply)
    host = headers.get(b"host", b"").decode("latin-1")
    return urlsplit(origin.decode("latin-1")).netloc == host


def _guarded(route: BaseRoute, ctx: ConsoleContext) -> BaseRoute:
    if isinstance(route, Route | WebSocketRoute | Mount):
        route.app = _Guard(route.app, ctx)
    return route


# --- sign in and out ---------------------------------------------------------------------------


def _login_form(message: str = "", next_url: str = "/console", status: int = 200) -> Response:
    body = fmt(
        '<h1>Sign in</h1>{msg}<div class="row">'
        '<section class="card"><h2>User</h2><form method="post" action="/console/login" class="form" id="login-user">'
        '<input type="hidden" name="next" value="{next}"><input type="hidden" name="kind" value="user">'
        '<label>User <input name="name" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
        '<button type="submit">Sign in</button></form></section>'
        '<section class="card"><h2>Access key</h2><form method="post" action="/console/login" class="form" id="login-key">'
        '<input type="hidden" name="next" value="{next}"><input type="hidden" name="kind" value="key">'
        '<label>Access key id <input name="access_key_id" autocomplete="username" required></label>'
        '<label>Secret access key <input name="secret" type="password" autocomplete="current-password" required></label>'
        '<button type="submit">Sign in</button></form></section></div>',
        msg=fmt('<p class="error" id="login-error">{m}</p>', m=message) if message else "",
        next=next_url,
    )
    return html(body, title="Sign in", session=None, status=status)


def _safe_next(value: str) -> str:
    # Only a path of this console: never another site (an open redirect).
    return (
        value
        if value.startswith("/console") and not value.startswith("//") and "\\" not in value
        else "/console"
    )


async def login_page(request: Request) -> Response:
    ctx: ConsoleContext = request.scope[SCOPE_KEY]
    next_url = _safe_next(request.query_params.get("next", "/console"))
    if ctx.insecure_no_auth:
        token, _ = await run(ctx.sessions.open, name="anonymous", role="admin", owner=None)
        response = RedirectResponse(next_url, status_code=303)
        set_cookie(response, request, token)
        return response
    if await session_of(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_form(next_url=next_url)


def _check_login(ctx: ConsoleContext, form: dict[str, str]) -> tuple[str, str, str | None] | None:
    if form.get("kind") == "key":
        key_id, secret = form.get("access_key_id", "").strip(), form.get("secret", "")
        if ctx.keys is None or not key_id or len(key_id) > 128:
            return None
        import hmac

        key = ctx.keys.lookup(key_id)
        if key is None or not hmac.compare_digest(key.secret_access_key.encode(), secret.encode()):
            return None
        return f"key:{key.access_key_id}", "operator", key.owner
    user = ctx.users.verify(form.get("name", "").strip(), form.get("password", ""))
    return (user.name, user.role, user.owner) if user is not None else None


def _login_subject(form: dict[str, str]) -> str:
    if form.get("kind") == "key":
        return "key:" + form.get("access_key_id", "").strip()[:128]
    return "name:" + form.get("name", "").strip()[:256]


async def login(request: Request) -> Response:
    ctx: ConsoleContext = request.scope[SCOPE_KEY]
    try:
        form = (await read_form(request)).fields
    except (FormTooLarge, BadForm) as exc:
        return _login_form(str(exc), status=400)
    next_url = _safe_next(form.get("next", "/console"))
    # Counted whether or not the name exists: the answers never tell which names are users.
    tried = subjects(_login_subject(form), request.client.host if request.client else None)
    wait = await run(ctx.throttle.retry_after, tried)
    if wait:
        response = _login_form(
            f"Too many failed sign-ins for this name or from this address; try again in {wait} seconds.",
            next_url,
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    who = await run(_check_login, ctx, form)
    if who is None:
        await run(ctx.throttle.failed, tried)
        return _login_form("Wrong name, password or key.", next_url, status=401)
    await run(ctx.throttle.succeeded, tried[0])
    name, role, owner = who
    token, _ = await run(ctx.sessions.open, name=name, role=role, owner=owner)
    response = RedirectResponse(next_url, status_code=303)
    set_cookie(response, request, token)
    return response


async def logout(request: Request) -> Response:
    ctx: ConsoleContext = request.scope[SCOPE_KEY]
    session = await session_of(request)
    if session is None or not await csrf_ok(request, session):
        return error_page(
            403, "The form's CSRF token is missing or wrong; reload the page and try again.", session
        )
    await run(ctx.sessions.close, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# --- static files ------------------------------------------------------------------------------


_LIVE_FILES = {"live.js": b"// live updates are not installed in this build\n", "live.css": b""}


def _static_file(name: str) -> bytes | None:
    """A file of console/static; live.js and live.css are the live package's (which serves them
    itself when installed: its routes come first), or empty stand-ins."""
    path = resources.files("tailrace.console").joinpath("static", name)
    if path.is_file():
        return path.read_bytes()
    return _LIVE_FILES.get(name)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    kind = next((t for ext, t in STATIC_TYPES.items() if name.endswith(ext)), None)
    if "/" in name or name.startswith(".") or kind is None:
        return Response("not found", status_code=404, media_type="text/plain")
    data = _static_file(name)
    if data is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(data, media_type=kind, headers={"cache-control": "no-cache"})


# --- assembly ----------------------------------------------------------------------------------


def _live_routes(store: StateStore, bus: Any) -> list[BaseRoute]:
    try:
        from tailrace.console.live import live_routes
    except ImportError:
        return []
    routes: list[BaseRoute] = live_routes(store=store, bus=bus, authorize=authorize)
    return routes


def console_routes(
    *,
    service: PipelineService,
    store: StateStore,
    keys: KeyStore | None,
    clock: Clock,
    bus: Any = None,
    insecure_no_auth: bool = False,
) -> list[BaseRoute]:
    """The console's routes, to pass to `create_app(routes=...)`: pages under /console, the
    live stream's routes (tailrace.console.live, when installed) before them."""
    from tailrace.api.auth import Authenticator
    from tailrace.api.operations import Operations
    from tailrace.api.rest import RestApi

    # The SQL store: users and sessions are tables of its database.
    engine = store.engine  # type: ignore[attr-defined]
    authenticator = Authenticator(keys, clock, insecure_no_auth=keys is None)
    ctx = ConsoleContext(
        store=store,
        engine=engine,
        service=service,
        rest=RestApi(store=store, storage=_storage(service), authenticator=authenticator, service=service),
        operations=Operations(service=service, store=store),
        keys=keys,
        users=UserStore(engine, clock),
        sessions=Sessions(engine, clock),
        throttle=LoginThrottle(engine, clock),
        clock=clock,
        insecure_no_auth=insecure_no_auth,
    )
    register_context(ctx)
    own: Sequence[BaseRoute] = [
        Route("/console", pages.pipelines, methods=["GET"]),
        Route("/console/", pages.pipelines, methods=["GET"]),
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console/new", pages.new_form, methods=["GET"]),
        Route("/console/new", pages.create, methods=["POST"]),
        Route("/console/static/{name}", static, methods=["GET"]),
        Route("/console/pipelines/{pipeline_id}", pipeline.pipeline_page, methods=["GET"]),
        Route(
            "/console/pipelines/{pipeline_id}/attempts/{attempt_id:path}/log",
            pipeline.attempt_log,
            methods=["GET"],
        ),
        Route(
            "/console/pipelines/{pipeline_id}/attempts/{attempt_id:path}/log/stream",
            logstream.log_stream,
            methods=["GET"],
        ),
        Route("/console/pipelines/{pipeline_id}/actions/{action}", actions.action, methods=["POST"]),
    ]
    live = _live_routes(store, bus)
    mounted: list[BaseRoute] = []
    for route in live:
        path = getattr(route, "path", "")
        if not path.startswith("/console"):  # relative to the console: under /console
            route = Mount("/console", routes=[route])
        mounted.append(route)
    # The live routes come first: /console/static/live.js is theirs when they serve it.
    return [_guarded(r, ctx) for r in [*mounted, *own]]


def _storage(service: PipelineService) -> Any:
    storage = service.transitions.storage
    if storage is None:
        from tailrace.storage import Storage

        storage = Storage(home=service.home)
    return storage
