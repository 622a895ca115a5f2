"""An attempt's log streamed to the page while the attempt runs (Server-Sent Events).

The same reads as `tailrace logs --follow`: while the attempt runs, the task runner's local file
on this host (`running_log_path`), by byte offset and at most CHUNK bytes a read, so memory is
bounded whatever the log's size; once it has ended, the uploaded log (the local file plus the
closing status) through the REST API's window reader, from the same offset. Each message is a
JSON string of complete lines, and its SSE id is the byte offset after it: EventSource sends it
back as `Last-Event-ID` when it reconnects, and the stream resumes there. An `end` event says
the attempt ended and everything was sent. A runner on another host writes no local file here:
the page then gets the log when it is uploaded, at the attempt's end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tailrace.api.errors import NotFoundRoute
from tailrace.console.auth import Session
from tailrace.console.context import ConsoleContext
from tailrace.console.web import Refused, page, run
from tailrace.runtime.errors import PipelineNotFound
from tailrace.runtime.worker import running_log_path
from tailrace.state import TERMINAL, Status

log = logging.getLogger("tailrace.console")

CHUNK = 64 * 1024
"""Bytes read per step (and the most one message carries)."""
POLL = 0.25
"""Seconds between reads of a quiet running log."""
STATUS_EVERY = 1.0
"""Seconds between looks at the attempt's status (a database read) while the log is quiet."""
UPLOAD_WAIT = 10.0
"""Seconds to wait for the upload after the attempt ended (it follows the status by a moment)."""
KEEPALIVE = 15.0
MAX_STREAMS = 200
"""Open log streams per console process; more are answered 503 (each polls a file)."""

_open = 0


@dataclass(frozen=True, kw_only=True)
class _Attempt:
    status: Status
    local: Path


def _lookup(ctx: ConsoleContext, session: Session, pid: str, aid: str) -> _Attempt:
    """The attempt, if the session's owner owns its pipeline (else not found, like a missing one)."""
    caller = ctx.caller(session)
    with ctx.store.transaction(readonly=True) as tx:
        p = tx.pipelines.find(pid)
        if p is None or not caller.owns(p.owner):
            raise PipelineNotFound(pid)
        attempt = tx.attempts.find(pid, aid)
    if attempt is None:
        raise NotFoundRoute(f"attempt {aid!r} does not exist in pipeline {pid!r}")
    return _Attempt(status=attempt.status, local=running_log_path(ctx.service.home, pid, attempt.id))


def _read_local(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(CHUNK)
    except FileNotFoundError:  # not started writing, or uploaded and removed just now
        return b""


def _read_uploaded(ctx: ConsoleContext, session: Session, pid: str, aid: str, offset: int) -> bytes | None:
    """A window of the uploaded log from `offset` (the REST reader: owner and location checks),
    or None while it is not uploaded."""
    path = {"pipeline_id": pid, "attempt_id": aid}
    try:
        resp = ctx.call(ctx.rest.attempt_log, session, path, {"offset": str(offset), "limit": str(CHUNK)})
    except NotFoundRoute:
        return None
    return bytes(resp.body)


def complete(piece: bytes, *, final: bool) -> bytes:
    """The part of `piece` to send now: whole lines (a line being written waits for its end),
    all of it at the end of the log, and a full window without a newline up to a whole UTF-8
    character (never half of one: the offsets stay on character boundaries)."""
    if final:
        return piece
    cut = piece.rfind(b"\n")
    if cut >= 0:
        return piece[: cut + 1]
    if len(piece) < CHUNK:
        return b""
    end = len(piece)
    for back in range(1, min(4, end) + 1):
        byte = piece[end - back]
        if byte & 0xC0 == 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return piece if back >= need else piece[: end - back]
        if byte & 0x80 == 0:
            break
    return piece


def _message(piece: bytes, next_offset: int) -> bytes:
    text = orjson.dumps(piece.decode("utf-8", "replace"))
    return b"id: %d\ndata: %s\n\n" % (next_offset, text)


def _offset_of(request: Request) -> int:
    """Where to start: EventSource's Last-Event-ID on a reconnect, else `?offset=` (the page's)."""
    raw = request.headers.get("last-event-id") or request.query_params.get("offset") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise Refused(400, "offset: expected a byte offset (a whole number)")
    return int(raw)


async def _frames(
    ctx: ConsoleContext, session: Session, pid: str, aid: str, offset: int, attempt: _Attempt
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 2000\n\n"
        now = time.monotonic()
        looked = sent = now
        ended_at: float | None = None
        while True:
            now = time.monotonic()
            if attempt.status in TERMINAL:
                ended_at = ended_at if ended_at is not None else now
                piece = await run(_read_uploaded, ctx, session, pid, aid, offset)
                uploaded = piece is not None
                if piece is None:  # not uploaded yet, or the upload failed: the runner's file
                    piece = await run(_read_local, attempt.local, offset)
                if piece:
                    offset += len(piece)
                    sent = now
                    yield _message(piece, offset)
                    continue
                if uploaded or now - ended_at > UPLOAD_WAIT:
                    yield b"event: end\ndata: %s\n\n" % orjson.dumps({"status": str(attempt.status)})
                    return
            else:
                raw = await run(_read_local, attempt.local, offset)
                piece = complete(raw, final=False)
                if piece:
                    offset += len(piece)
                    sent = now
                    yield _message(piece, offset)
                    if len(raw) == CHUNK:
                        continue  # more is waiting: no pause
                if now - looked >= STATUS_EVERY:
                    attempt = await run(_lookup, ctx, session, pid, aid)
                    looked = now
                    continue
            if now - sent >= KEEPALIVE:
                sent = now
                yield b": keepalive\n\n"
            await asyncio.sleep(POLL)
    except (PipelineNotFound, NotFoundRoute):
        return  # gone meanwhile: the reconnect is answered 404, which ends EventSource
    except Exception:  # the store is away: EventSource reconnects from the last offset sent
        log.exception("console: streaming the log of %s failed", aid)


class _LogStream(StreamingResponse):
    """Counts the stream out however it ends, also when the browser left before the first byte
    (then the frames generator never starts, so it cannot count itself out)."""

    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        global _open
        try:
            await super().__call__(scope, receive, send)
        finally:
            _open -= 1


@page()
async def log_stream(request: Request, ctx: ConsoleContext, session: Session) -> Response:
    """GET .../attempts/{attempt_id}/log/stream: the log from `offset` as it is written."""
    global _open
    pid, aid = request.path_params["pipeline_id"], request.path_params["attempt_id"]
    offset = _offset_of(request)
    attempt = await run(_lookup, ctx, session, pid, aid)
    if _open >= MAX_STREAMS:
        raise Refused(503, "Too many log streams are open on this console process; try again later.")
    _open += 1
    return _LogStream(_frames(ctx, session, pid, aid, offset, attempt))
