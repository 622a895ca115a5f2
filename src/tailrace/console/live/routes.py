"""The live routes: the event stream (SSE), the broadcast form's POST, the history, live.js/css.

Server-Sent Events rather than WebSocket: the feed only flows to the browser (the one upward
action, a broadcast, is an ordinary CSRF-checked POST), EventSource reconnects by itself and
sends `Last-Event-ID`, which is exactly the replay key, and it passes any HTTP load balancer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tailrace.console.live.broadcasts import MAX_BROADCAST, broadcast_text, record_broadcast
from tailrace.console.live.hub import Client, LiveHub, Replay
from tailrace.console.live.wire import ViewerLike, sse
from tailrace.events.abc import EventBus
from tailrace.state.abc import StateStore

log = logging.getLogger("tailrace.console.live")

STATIC = Path(__file__).parent / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_NO_STORE = {"Cache-Control": "no-store"}


class Authorize(Protocol):
    """tailrace.console.auth.authorize: the viewer of the request, or None when not logged in,
    or when `write` is asked and the viewer is read-only or the X-CSRF-Token header is wrong."""

    def __call__(self, request: Request, *, write: bool = False) -> Awaitable[ViewerLike | None]: ...


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_NO_STORE)


def _last_event_id(request: Request) -> int | None:
    """The page's last event id (EventSource's header, or `?lastEventId=`); junk counts as none."""
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    return int(raw)


def live_routes(
    *, store: StateStore, bus: EventBus | None, authorize: Authorize, hub: LiveHub | None = None
) -> list[BaseRoute]:
    """The routes of the live feed: GET /console/live/stream (SSE), POST /console/live/broadcast,
    GET /console/live/history, GET /console/static/live.js and live.css.

    `bus`: the Redis bus when `redis_url` is set (`services.event_bus`), else None: the hub then
    follows the store's outbox itself (the in-process bus has no relay feeding it). `hub`: pass
    your own LiveHub to close it on shutdown (`hub.close()`); otherwise one is made here, started
    on the first request. Call once per app (one hub, one bus subscription per process)."""
    live = hub or LiveHub(store=store, bus=bus)

    async def stream(request: Request) -> Response:
        viewer = await authorize(request)
        if viewer is None:
            return _error(401, "not logged in")
        try:
            client, replay = await live.attach(viewer.owner, _last_event_id(request))
        except Exception:  # the store or the bus is away; the browser retries by itself
            log.exception("console live feed: could not open a stream")
            return _error(503, "the live feed is not available right now; retrying")
        hello = {"viewer": viewer.name, "canWrite": viewer.can_write, "head": replay.head}
        return _Stream(live, client, _frames(live, client, replay, hello))

    async def broadcast(request: Request) -> Response:
        viewer = await authorize(request, write=True)
        if viewer is None:
            return _error(403, "broadcast needs a logged-in user with write access and a valid CSRF token")
        try:
            text = broadcast_text(await _body_text(request))
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            await asyncio.to_thread(record_broadcast, store, text, sender=viewer.name, owner=viewer.owner)
        except Exception:
            log.exception("console live feed: could not record a broadcast")
            return _error(503, "the broadcast could not be recorded right now; try again")
        return JSONResponse({"ok": True, "text": text}, headers=_NO_STORE)

    async def history(request: Request) -> Response:
        viewer = await authorize(request)
        if viewer is None:
            return _error(401, "not logged in")
        raw = request.query_params.get("limit", "50")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= 1000:
            return _error(400, f"limit: expected a number from 1 to 1000; got {raw[:40]!r}")
        try:
            await live.start()
        except Exception:
            log.exception("console live feed: could not start")
            return _error(503, "the live feed is not available right now")
        events = [f.data for f in live.recent_history(viewer.owner, int(raw))]
        return JSONResponse({"events": events, "head": live.head}, headers=_NO_STORE)

    def static(name: str) -> Route:
        path = STATIC / name
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

        async def serve(request: Request) -> Response:
            return Response(path.read_bytes(), media_type=_TYPES[path.suffix], headers=headers)

        return Route(f"/console/static/{name}", serve, methods=["GET"], name=f"live_static_{path.stem}")

    routes: list[BaseRoute] = [
        Route("/console/live/stream", stream, methods=["GET"]),
        Route("/console/live/broadcast", broadcast, methods=["POST"]),
        Route("/console/live/history", history, methods=["GET"]),
        # One route per file: the rest of /console/static/ is the pages' (another router's).
        *(static(name) for name in _STATIC_FILES),
    ]
    return routes


_STATIC_FILES = ("live.js", "live.css")


class _Stream(StreamingResponse):
    """The SSE response; it leaves the hub however it ends, even when the browser went away
    before the first byte (then the frames generator never starts, so its `finally` never runs)."""

    def __init__(self, live: LiveHub, client: Client, frames: AsyncIterator[bytes]) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.live = live
        self.client = client

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.live.detach(self.client)


async def _frames(
    live: LiveHub, client: Client, replay: Replay, hello: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The stream of one page: hello, the replay, a sync point at the replay's head, then live."""
    try:
        out = [b"retry: 1000\n", sse(hello, name="hello")]
        if replay.reset:
            out.append(sse({"reason": "missed too much to replay"}, name="reset"))
        out += [f.sse for f in replay.frames]
        # Sets the page's Last-Event-ID to the head even when the replay showed it nothing.
        out.append(sse({"head": replay.head}, event_id=replay.head, name="sync"))
        yield b"".join(out)
        sent = replay.head
        while True:
            if client.pending:
                chunk = []
                while client.pending:
                    f = client.pending.popleft()
                    if f.event_id > sent:
                        chunk.append(f.sse)
                        sent = f.event_id
                if chunk:
                    yield b"".join(chunk)
                continue
            if client.dropped:
                yield sse({"reason": "this page fell behind; reconnect to catch up"}, name="reconnect")
                return
            if client.ping:
                client.ping = False
                yield b": keepalive\n\n"
                continue
            await client.wait()
    finally:
        live.detach(client)


async def _body_text(request: Request) -> str:
    """The broadcast text of a JSON body {"text": ...} or a form field `text` (at most 64 KiB read)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > 65536:
            raise ValueError(
                f"text: the request body is over 64 KiB (a broadcast is at most {MAX_BROADCAST} characters)"
            )
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ValueError('text: expected a JSON object {"text": "..."} with a string')
        return str(data["text"])
    if kind == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs

        values = parse_qs(body.decode("utf-8", "replace")).get("text")
        if not values:
            raise ValueError("text: missing")
        return values[0]
    raise ValueError(f"expected a JSON or form body; got content type {kind[:80]!r}")
