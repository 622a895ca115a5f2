"""A small console app for the live tests: live_routes + a test authorize + one HTML page.

Run by uvicorn in its own process (`uvicorn --factory liveapp:build`), configured by environment:
LIVE_DB_URL (the state store), LIVE_REDIS_URL and LIVE_STREAM (the Redis bus; without them the
hub follows the store). With a bus, the process also runs the outbox relay (one holds the lease).

Test login: cookie `tr_user` = `NAME.OWNER.MODE` (OWNER `_` = an operator who sees every owner;
MODE `w` = may write). The CSRF token of NAME is `csrf-NAME` (header X-CSRF-Token).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tailrace.clock import SystemClock
from tailrace.console.live import LiveHub, live_routes
from tailrace.events.abc import EventBus
from tailrace.events.relay import OutboxRelay
from tailrace.state import SqlStateStore, create_engine

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>live test</title>
<meta name="csrf-token" content="{token}">
<link rel="stylesheet" href="/console/static/live.css">
<script type="module" src="/console/static/live.js"></script></head>
<body><h1>live test page</h1><div id="tr-live" data-stream="/console/live/stream"></div></body></html>
"""
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'"


@dataclass(frozen=True)
class Viewer:
    name: str
    owner: str | None
    can_write: bool


def viewer_of(request: Request) -> Viewer | None:
    raw = request.cookies.get("tr_user", "")
    parts = raw.split(".")
    if len(parts) != 3 or not parts[0]:
        return None
    name, owner, mode = parts
    return Viewer(name=name, owner=None if owner == "_" else owner, can_write=mode == "w")


async def authorize(request: Request, *, write: bool = False) -> Viewer | None:
    viewer = viewer_of(request)
    if viewer is None or not write:
        return viewer
    if not viewer.can_write or request.headers.get("x-csrf-token") != f"csrf-{viewer.name}":
        return None
    return viewer


def build() -> Starlette:
    store = SqlStateStore(create_engine(os.environ["LIVE_DB_URL"]), clock=SystemClock())
    bus: EventBus | None = None
    relay: OutboxRelay | None = None
    if os.environ.get("LIVE_REDIS_URL"):
        from tailrace.events.redis import RedisEventBus

        bus = RedisEventBus(os.environ["LIVE_REDIS_URL"], stream=os.environ["LIVE_STREAM"], block_ms=500)
        relay = OutboxRelay(store, bus, poll_interval=0.1, lease_seconds=3.0)
    hub = LiveHub(store=store, bus=bus)

    async def page(request: Request) -> HTMLResponse:
        viewer = viewer_of(request)
        token = f"csrf-{viewer.name}" if viewer else ""
        return HTMLResponse(PAGE.format(token=token), headers={"Content-Security-Policy": CSP})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if relay is not None:
            relay.start()
        await hub.start()
        yield
        hub.close()
        if relay is not None:
            relay.stop()
        if bus is not None:
            bus.close()
        store.close()

    routes = [Route("/", page), *live_routes(store=store, bus=bus, authorize=authorize, hub=hub)]
    return Starlette(routes=routes, lifespan=lifespan)
