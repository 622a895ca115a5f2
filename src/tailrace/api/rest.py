"""The REST API under /api/v1: what the console needs and the AWS API lacks (pipeline
summaries with counts, the component graph, the per-period instance grid, attempts and their
logs, the event feed since a cursor, and the backfill an activation would create). Read-only
(the activation preview is a POST only because it takes ActivatePipeline's body) but for
operator broadcasts to the console (`POST /broadcasts`), owner-scoped, described in openapi.py.

Authentication is the same as for the AWS API (SigV4 with a tailrace key); for browsers and curl
it also accepts HTTP Basic with ACCESS_KEY_ID:SECRET (use it over TLS or on localhost only).
"""

from __future__ import annotations

import builtins
import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tailrace.api import present, shapes
from tailrace.api.auth import Authenticator, Caller, PendingCaller
from tailrace.api.aws.runs import MAX_RUNS, list_runs
from tailrace.api.errors import NotFoundRoute
from tailrace.api.jsonproto import error_response, json_response, parse_json_body, read_body, request_parts
from tailrace.api.operations import values_from_wire
from tailrace.clock import format_dp, parse_dp
from tailrace.errors import NotFoundError, StorageError
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.logs import log_storage
from tailrace.runtime.reads import pipeline_health
from tailrace.state import Pipeline, PipelineNotFound, StateStore, Status, Where
from tailrace.storage import AccessDeniedError, Storage, UnsafeKeyError

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService

PREFIX = "/api/v1"
JSON = "application/json"
MAX_LIMIT = 1000
LOG_CHUNK = 256 * 1024
BODY_LIMIT = 64 * 1024
"""The only body the REST API takes is an activation preview's (ActivatePipeline's input)."""

ALL_STATUSES = tuple(Status)
GRID_READ = 2000
"""Instances read per query while filling a page of the grid."""
RUNNABLE = frozenset({"activity", "data node", "resource", "precondition"})
"""Categories that get instances: the grid's columns even before their first period."""
PREVIEW_MAX_PERIODS = 100_000
"""An activation preview counts at most this many periods (and says when there are more)."""


class Params:
    """Query parameters, each checked with a message naming the parameter."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self.query = query

    def int(self, name: str, default: int, *, low: int = 0, high: int = MAX_LIMIT) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidRequest(f"query parameter '{name}' must be an integer, got {raw!r}")
        if not low <= value <= high:
            raise InvalidRequest(f"query parameter '{name}' must be between {low} and {high}, got {value}")
        return value

    def time(self, name: str) -> datetime | None:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_dp(raw)
        except ValueError:
            raise InvalidRequest(
                f"query parameter '{name}' must be a date-time like 2024-01-31T00:00:00, got {raw!r}"
            )

    def str(self, name: str) -> str | None:
        raw = self.query.get(name)
        return raw or None

    def interval(self, name: builtins.str) -> tuple[datetime, datetime] | None:
        """START,END: two date-times, as list-runs' --start-interval takes them."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return None
        parts = [p.strip() for p in raw.split(",")]
        try:
            if len(parts) == 2:
                return parse_dp(parts[0]), parse_dp(parts[1])
        except ValueError:
            pass
        raise InvalidRequest(
            f"query parameter '{name}' must be START,END like 2024-01-01T00:00:00,2024-01-02T00:00:00, got {raw!r}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Call:
    caller: Caller
    params: Params
    path: Mapping[str, str]
    body: bytes = b""


class RestApi:
    def __init__(
        self,
        *,
        store: StateStore,
        storage: Storage | None,
        authenticator: Authenticator,
        service: PipelineService | None = None,
    ) -> None:
        """`service` serves the activation preview (without it, that path answers 404)."""
        self.store = store
        self.storage = storage
        self.authenticator = authenticator
        self.service = service

    def routes(self) -> list[Route]:
        r = self._route
        return [
            r("/pipelines", self.pipelines),
            r("/pipelines/{pipeline_id}", self.pipeline),
            r("/pipelines/{pipeline_id}/graph", self.graph),
            r("/pipelines/{pipeline_id}/grid", self.grid),
            r("/pipelines/{pipeline_id}/runs", self.runs),
            r("/pipelines/{pipeline_id}/instances/{instance_id:path}", self.instance),
            r("/pipelines/{pipeline_id}/attempts/{attempt_id:path}/log", self.attempt_log),
            r("/events", self.events),
            r("/pipelines/{pipeline_id}/activation-preview", self.activation_preview, methods=["POST"]),
            r("/broadcasts", self.broadcasts, methods=["POST"]),
        ]

    def _route(
        self, path: str, fn: Callable[[Call], Any], methods: tuple[str, ...] | list[str] = ("GET",)
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            try:
                head = request_parts(request, b"")
                pending = await run_sync(functools.partial(self.authenticator.begin, head, allow_basic=True))
                body = await read_body(request, BODY_LIMIT, what=f"{request.method} {request.url.path}")
                parts = request_parts(request, body)
                call = functools.partial(self._run, fn, parts, pending, request)
                result = await run_sync(call)
                if isinstance(result, Response):
                    result.headers["x-amzn-RequestId"] = request_id
                    return result
                return json_response(result, request_id=request_id, content_type=JSON)
            except Exception as exc:
                return error_response(exc, request_id=request_id, content_type=JSON, rest=True)

        return Route(PREFIX + path, endpoint, methods=list(methods), name=fn.__name__)

    def _run(self, fn: Callable[[Call], Any], parts: Any, pending: PendingCaller, request: Request) -> Any:
        caller = pending.finish(parts.body)
        _refuse_control_characters(request)
        return fn(
            Call(
                caller=caller, params=Params(request.query_params), path=request.path_params, body=parts.body
            )
        )

    # --- helpers ---------------------------------------------------------------------------

    def _owned(self, tx: Any, call: Call) -> Pipeline:
        pid = call.path["pipeline_id"]
        p = tx.pipelines.find(pid)
        if p is None or not call.caller.owns(p.owner):
            raise PipelineNotFound(pid)
        return p

    # --- endpoints -------------------------------------------------------------------------

    def broadcasts(self, call: Call) -> dict[str, Any]:
        """An operator broadcast to the console pages of the caller's owner (all pages when
        authentication is off): body {"text": "..."}, the text checked as the console's form does."""
        from tailrace.console.live.broadcasts import broadcast_text, record_broadcast

        body = parse_json_body(call.body)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise InvalidRequest('text: expected a JSON object {"text": "..."} with a string')
        try:
            text = broadcast_text(body["text"])
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        sender = call.caller.owner or "operator"
        record_broadcast(self.store, text, sender=sender, owner=call.caller.owner)
        return {"text": text, "owner": call.caller.owner}

    def pipelines(self, call: Call) -> dict[str, Any]:
        limit = call.params.int("limit", 100, low=1)
        after = call.params.str("after")
        with self.store.transaction(readonly=True) as tx:
            page = tx.pipelines.page(owner=call.caller.owner, after=after, limit=limit + 1)
            more = len(page) > limit
            page = page[:limit]
            items = [
                present.pipeline_json(p, pipeline_health(tx, p.id), _counts(tx.instances.count(p.id)))
                for p in page
            ]
        return {"pipelines": items, "next": page[-1].id if more and page else None}

    def pipeline(self, call: Call) -> dict[str, Any]:
        with self.store.transaction(readonly=True) as tx:
            p = self._owned(tx, call)
            return present.pipeline_json(p, pipeline_health(tx, p.id), _counts(tx.instances.count(p.id)))

    def graph(self, call: Call) -> dict[str, Any]:
        with self.store.transaction(readonly=True) as tx:
            self._owned(tx, call)
            components = tx.components.list(call.path["pipeline_id"])
        ids = {c.id for c in components}
        nodes = [
            {"id": c.id, "name": c.name, "type": c.type, "category": c.category, "status": str(c.status)}
            for c in components
        ]
        edges = [
            {"from": c.id, "to": target, "field": key}
            for c in components
            for key, target in present.ref_targets(c.fields)
            if target in ids and key != "parent"
        ]
        return {"nodes": nodes, "edges": edges}

    def grid(self, call: Call) -> dict[str, Any]:
        """Instances by schedule period (rows, newest first) and component (columns). Only the
        page's periods are read (a long backfill costs what one page of it costs)."""
        start, end = call.params.time("from"), call.params.time("to")
        limit = call.params.int("limit", 50, low=1, high=500)
        rows: dict[tuple[datetime, datetime], dict[str, Any]] = {}
        with self.store.transaction(readonly=True) as tx:
            self._owned(tx, call)
            pid = call.path["pipeline_id"]
            components = tx.components.list(pid)
            keys = tx.instances.periods(pid, since=start, before=end, limit=limit + 1)
            shown = keys[:limit]
            wanted = set(shown)
            where = [Where(column="scheduled_start", op="ge", value=shown[-1][0])] if shown else []
            where += [Where(column="scheduled_start", op="lt", value=end)] if end else []
            after: str | None = None
            while shown:
                page = tx.instances.page(pid, after=after, limit=GRID_READ, where=where)
                for inst in page:
                    if (inst.scheduled_start, inst.scheduled_end) in wanted:
                        row = rows.setdefault((inst.scheduled_start, inst.scheduled_end), {})
                        row[inst.component_id] = present.instance_cell(inst)
                if len(page) < GRID_READ:
                    break
                after = page[-1].id
        periods = [
            {
                "scheduledStartTime": format_dp(s),
                "scheduledEndTime": format_dp(e),
                "cells": rows.get((s, e), {}),
            }
            for s, e in shown
        ]
        used = {cid for cells in rows.values() for cid in cells}
        columns = [
            {"id": c.id, "name": c.name, "type": c.type, "category": c.category}
            for c in components
            if c.id in used or (c.category or "").lower().replace("_", " ") in RUNNABLE
        ]
        more = len(keys) > limit
        return {
            "components": columns,
            "periods": periods,
            "hasMore": more,
            "nextTo": format_dp(shown[-1][0]) if more else None,
        }

    def runs(self, call: Call) -> dict[str, Any]:
        """The rows `list-runs` prints, in one call (see tailrace.api.aws.runs): the instances
        whose status is one of `status`, whose actual start is in `startedBetween` and whose
        scheduled start is in `scheduledBetween` (each optional; bounds inclusive, to the second)."""
        if self.service is None:
            raise NotFoundRoute("this server does not list runs")
        return list_runs(
            self.service,
            call.path["pipeline_id"],
            statuses=[s for s in (call.params.str("status") or "").split(",") if s.strip()],
            started=call.params.interval("startedBetween"),
            scheduled=call.params.interval("scheduledBetween"),
            owner=call.caller.owner,
            limit=call.params.int("limit", MAX_RUNS, low=0, high=MAX_RUNS),
        )

    def instance(self, call: Call) -> dict[str, Any]:
        with self.store.transaction(readonly=True) as tx:
            self._owned(tx, call)
            pid, iid = call.path["pipeline_id"], call.path["instance_id"]
            inst = tx.instances.find(pid, iid)
            if inst is None:
                raise NotFoundRoute(f"instance {iid!r} does not exist in pipeline {pid!r}")
            attempts = tx.attempts.for_instance(pid, iid)
        return {**present.instance_json(inst), "attempts": [present.attempt_json(a) for a in attempts]}

    def attempt_log(self, call: Call) -> Response:
        """A window of the attempt's log as text: `limit` bytes (at most 256 KiB) from `offset`,
        or the last `tail` bytes. Only the window is read, whatever the log's size; the
        x-tailrace-next-offset header is where to continue (a viewer follows a growing log)."""
        offset = call.params.int("offset", 0, low=0, high=2**62)
        limit = call.params.int("limit", LOG_CHUNK, low=0, high=LOG_CHUNK)
        tail = call.params.int("tail", 0, low=0, high=LOG_CHUNK)
        with self.store.transaction(readonly=True) as tx:
            pipeline = self._owned(tx, call)
            pid, aid = call.path["pipeline_id"], call.path["attempt_id"]
            attempt = tx.attempts.find(pid, aid)
        if attempt is None:
            raise NotFoundRoute(f"attempt {aid!r} does not exist in pipeline {pid!r}")
        if attempt.log_location is None or self.storage is None:
            raise NotFoundRoute(f"attempt {aid!r} has no log")
        try:
            # Read as the pipeline's owner unless it is in the server's own log directory: a
            # pipelineLogUri such as file:///proc/self/environ? is refused, never served.
            storage = log_storage(self.storage, attempt.log_location, self.storage.home, pipeline.owner)
            if tail:
                _, size = storage.read_range(attempt.log_location, 0, 0)
                offset, limit = max(0, size - tail), tail
            chunk, size = storage.read_range(attempt.log_location, offset, limit)
        except (AccessDeniedError, UnsafeKeyError) as exc:
            raise NotFoundRoute(f"the log of attempt {aid!r} cannot be read: {exc}")
        except (NotFoundError, StorageError, OSError):
            raise NotFoundRoute(f"the log of attempt {aid!r} is not (yet) at {attempt.log_location}")
        return Response(
            chunk,
            media_type="text/plain; charset=utf-8",
            headers={
                "x-tailrace-offset": str(offset),
                "x-tailrace-next-offset": str(offset + len(chunk)),
                "x-tailrace-size": str(size),
            },
        )

    def events(self, call: Call) -> dict[str, Any]:
        """Events after `after` (a cursor), oldest first; `cursor` is where to continue from."""
        after = call.params.int("after", 0, low=0, high=2**62)
        limit = call.params.int("limit", 200, low=1)
        pipeline_id = call.params.str("pipelineId")
        owner = call.caller.owner
        with self.store.transaction(readonly=True) as tx:
            if pipeline_id is not None:
                p = tx.pipelines.find(pipeline_id)
                if p is None or not call.caller.owns(p.owner):
                    raise PipelineNotFound(pipeline_id)
            owned: set[str] | None = None
            if owner is not None and pipeline_id is None:
                owned = {p.id for p in _all_pipelines(tx, owner)}
        batch = self.store.events_after(after, pipeline_id=pipeline_id, limit=limit)
        cursor = batch[-1].id if batch else after
        shown = [r for r in batch if owned is None or r.event.pipeline_id in owned]
        return {
            "events": [present.event_json(e) for e in shown],
            "cursor": cursor,
            "hasMore": len(batch) == limit,
        }

    def activation_preview(self, call: Call) -> dict[str, Any]:
        """What ActivatePipeline with this body would create at once (the backfill of a past
        start), period by period; nothing is changed. The body is ActivatePipeline's
        (startTimestamp, parameterValues; pipelineId comes from the path); `limit` periods are
        listed, all are counted."""
        if self.service is None:
            raise NotFoundRoute("this server does not preview activations")
        limit = call.params.int("limit", 20, low=0)
        pid = call.path["pipeline_id"]
        with self.store.transaction(readonly=True) as tx:
            self._owned(tx, call)
        body = parse_json_body(call.body)
        p = shapes.check_input("ActivatePipeline", {**body, "pipelineId": pid})
        values = values_from_wire(p["parameterValues"]) if "parameterValues" in p else None
        windows = self.service.preview_activation(
            pid,
            start_timestamp=p.get("startTimestamp"),
            parameter_values=values,
            limit=PREVIEW_MAX_PERIODS + 1,
        )
        complete = len(windows) <= PREVIEW_MAX_PERIODS
        windows = windows[:PREVIEW_MAX_PERIODS]
        return {
            "pipelineId": pid,
            "periods": len(windows),
            "instances": sum(len(w.instances) for w in windows),
            "complete": complete,
            "firstScheduledStart": format_dp(windows[0].start) if windows else None,
            "lastScheduledStart": format_dp(windows[-1].start) if windows else None,
            "windows": [
                {
                    "index": w.index,
                    "scheduledStartTime": format_dp(w.start),
                    "scheduledEndTime": format_dp(w.end),
                    "runAt": format_dp(w.run_at),
                    "instances": list(w.instances),
                }
                for w in windows[:limit]
            ],
        }


def _refuse_control_characters(request: Request) -> None:
    """Ids, cursors and dates never hold control characters; refuse them at the edge (a NUL
    reaching PostgreSQL would be a server error, not the caller's)."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in str(value)):
            where = "path segment" if name in request.path_params else "query parameter"
            raise InvalidRequest(f"{where} '{name}' must not contain control characters, got {str(value)!r}")


def _counts(counts: Mapping[Status, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counts.items()) if v}


def _all_pipelines(tx: Any, owner: str) -> list[Pipeline]:
    out: list[Pipeline] = []
    after: str | None = None
    while True:
        page = tx.pipelines.page(owner=owner, after=after, limit=1000)
        out.extend(page)
        if len(page) < 1000:
            return out
        after = page[-1].id
