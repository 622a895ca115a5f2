"""Who is looking at the console: server-side sessions, CSRF tokens, and `authorize`.

A session is a random cookie value whose SHA-256 is a row of `tr_console_sessions` (with the
viewer's name, role, owner and CSRF token), so any console process answers any request: no
sticky sessions, nothing in process memory. The cookie is HttpOnly, SameSite=Strict, and
Secure on https. Every state-changing request carries the session's CSRF token, as the form
field `csrf` or the `X-CSRF-Token` header.

`Viewer` and `authorize` are the interface the live stream (tailrace.console.live) uses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from tailrace.clock import Clock
from tailrace.state import schema

if TYPE_CHECKING:
    from tailrace.console.context import ConsoleContext

COOKIE = "tr_console"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SESSION_HOURS = 12
SCOPE_KEY = "tailrace.console"


@dataclass(frozen=True)
class Viewer:
    name: str
    owner: str | None
    """None: sees every owner's pipelines (an admin, or --insecure-no-auth)."""
    can_write: bool


@dataclass(frozen=True, kw_only=True)
class Session:
    name: str
    role: str
    owner: str | None
    csrf: str

    @property
    def viewer(self) -> Viewer:
        return Viewer(name=self.name, owner=self.owner, can_write=self.role != "readonly")

    @property
    def owner_for_new(self) -> str:
        from tailrace.api.keys import DEFAULT_OWNER

        return self.owner if self.owner is not None else DEFAULT_OWNER


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.t = schema.console_sessions

    def open(self, *, name: str, role: str, owner: str | None) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown only to the browser) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(name=name, role=role, owner=owner, csrf=secrets.token_urlsafe(24))
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.t).where(self.t.c.expires_at < now))
            conn.execute(
                sa.insert(self.t).values(
                    token_hash=_digest(token),
                    name=name,
                    role=role,
                    owner=owner,
                    csrf=session.csrf,
                    expires_at=now + timedelta(hours=SESSION_HOURS),
                )
            )
        return token, session

    def find(self, token: str) -> Session | None:
        if not token or len(token) > 256:
            return None
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(self.t).where(
                        self.t.c.token_hash == _digest(token), self.t.c.expires_at > self.clock.now()
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Session(name=row["name"], role=row["role"], owner=row["owner"], csrf=row["csrf"])

    def close(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.t).where(self.t.c.token_hash == _digest(token)))


_fallback: ConsoleContext | None = None


def register_context(ctx: ConsoleContext) -> None:
    """The context `authorize` falls back on for routes mounted outside the console's own
    middleware (one console per process in production)."""
    global _fallback
    _fallback = ctx


def context_of(request: Request) -> ConsoleContext:
    ctx: Any = request.scope.get(SCOPE_KEY) or _fallback
    if ctx is None:
        raise RuntimeError("no console is mounted in this process")
    return ctx


async def session_of(request: Request) -> Session | None:
    from starlette.concurrency import run_in_threadpool

    ctx = context_of(request)
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    cached = request.scope.get("tailrace.console.session")
    if cached is not None:
        return cached
    session = await run_in_threadpool(ctx.sessions.find, token)
    if session is not None and session.name.startswith("key:") and not await _key_active(ctx, session):
        return None
    if session is not None:
        request.scope["tailrace.console.session"] = session
    return session


async def _key_active(ctx: ConsoleContext, session: Session) -> bool:
    """A session signed in with an access key ends when the key is disabled."""
    from starlette.concurrency import run_in_threadpool

    if ctx.keys is None:
        return True
    return await run_in_threadpool(ctx.keys.lookup, session.name.removeprefix("key:")) is not None


async def csrf_ok(request: Request, session: Session) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    # A WebSocket handshake (the live stream may pass one) has no method and no form.
    if sent is None and getattr(request, "method", None) == "POST":
        kind = request.headers.get("content-type", "")
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            from tailrace.console.forms import read_form

            sent = (await read_form(request)).fields.get(CSRF_FIELD)
    return bool(sent) and hmac.compare_digest(str(sent).encode(), session.csrf.encode())


async def authorize(request: Request, *, write: bool = False) -> Viewer | None:
    """The viewer of this request, or None: not signed in; or, with `write`, a read-only role
    or a CSRF token (header X-CSRF-Token or form field `csrf`) that does not match."""
    session = await session_of(request)
    if session is None:
        return None
    if write and (session.role == "readonly" or not await csrf_ok(request, session)):
        return None
    return session.viewer


def set_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
