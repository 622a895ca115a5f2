"""`create_app`: the HTTP surface as one Starlette app, composed from ASGI parts.

POST /                  AWS Data Pipeline JSON 1.1 (boto3 / AWS CLI with endpoint_url), or, when
                        form-encoded without X-Amz-Target, the SNS and CloudWatch Query APIs
POST /service/GraniteServiceVersion20100801/operation/<Op>   CloudWatch in RPC v2 CBOR
GET  /?Action=...       SNS's subscription confirm and unsubscribe links
GET  /api/v1/...        REST API for the console (rest.py)
GET  /openapi.json      the OpenAPI document
GET  /healthz           liveness, no authentication
GET  /metrics           Prometheus metrics (totals only), no authentication
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from tailrace import __version__
from tailrace.api.auth import Authenticator
from tailrace.api.errors import MethodNotAllowed, NotFoundRoute
from tailrace.api.jsonproto import JsonProtocolEndpoint, error_response
from tailrace.api.loopreads import loop_reads_for
from tailrace.api.openapi import openapi_document
from tailrace.api.operations import Operations
from tailrace.api.queryapp import QueryEndpoint
from tailrace.api.rest import RestApi
from tailrace.clock import Clock
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.metrics import AttemptCounters, exposition
from tailrace.state import StateStore

if TYPE_CHECKING:
    from tailrace.api.keys import KeyStore
    from tailrace.notify.alarms import AlarmService
    from tailrace.notify.signing import Signer
    from tailrace.notify.topics import TopicService
    from tailrace.runtime.service import PipelineService
    from tailrace.storage import Storage

log = logging.getLogger(__name__)


def create_app(
    *,
    service: PipelineService,
    store: StateStore,
    keys: KeyStore | None,
    clock: Clock,
    storage: Storage | None = None,
    insecure_no_auth: bool = False,
    routes: Sequence[BaseRoute] = (),
    poll_threads: int = 16,
    api_threads: int = 32,
    topics: TopicService | None = None,
    signer: Signer | None = None,
    alarms: AlarmService | None = None,
    poll_wait: float = 90.0,
    loop_reads: bool = True,
) -> Starlette:
    """The API as an ASGI app.

    `routes` are mounted before the API's own (the console adds its pages and push socket here);
    `GET /` answers with an index unless one of them takes it. With `insecure_no_auth` every
    request is accepted and sees every owner's pipelines. `loop_reads`: on PostgreSQL,
    DescribePipelines runs on the event loop over a connection of its own (api/loopreads.py).
    """
    if insecure_no_auth:
        log.warning(
            "API authentication is OFF (--insecure-no-auth): anyone who can reach the port controls "
            "every pipeline"
        )
    authenticator = Authenticator(keys, clock, insecure_no_auth=insecure_no_auth)
    operations = Operations(service=service, store=store, poll_wait=poll_wait)
    endpoint = JsonProtocolEndpoint(
        operations,
        authenticator,
        poll_threads=poll_threads,
        api_threads=api_threads,
        loop_reads=loop_reads_for(operations, store) if loop_reads else None,
    )
    if storage is None:
        from tailrace.storage import Storage

        storage = Storage(home=service.home)  # logs under <home>/logs and <home>/s3 (embedded)
    query_endpoint, cbor_route, cloudwatch_json = _query_endpoints(
        store, clock, authenticator, topics, alarms
    )
    rest = RestApi(store=store, storage=storage, authenticator=authenticator, service=service)

    async def index(request: Request) -> Response:
        if "Action" in request.query_params:
            return await query_endpoint.link(request)
        return JSONResponse(
            {
                "service": "tailrace",
                "version": __version__,
                "aws": "POST / with X-Amz-Target: DataPipeline.<Operation>",
                "openapi": "/openapi.json",
                "rest": "/api/v1",
                "authentication": "off" if insecure_no_auth else "AWS SigV4 (service datapipeline)",
            }
        )

    if signer is None:
        from tailrace.notify.signing import Signer

        signer = Signer(service.home / "notify")

    async def signing_cert(request: Request) -> Response:
        # The certificate subscribers verify SNS signatures with (public; the key never leaves).
        if request.path_params["name"] != signer.cert_name:
            raise HTTPException(404)
        return Response(signer.cert_pem, media_type="application/x-pem-file")

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    counters = AttemptCounters(store)
    counters.start()

    async def metrics(_: Request) -> Response:
        # Totals only (no pipeline ids or owners' names), so no key is asked for: see runtime/metrics.py.
        text = await run_in_threadpool(exposition, store, counters)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    all_routes: list[BaseRoute] = [
        *routes,
        Route("/", _PostRoot(endpoint, query_endpoint, cloudwatch_json), methods=["POST"]),
        Route("/", index, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/sns/{name}", signing_cert, methods=["GET"]),
        cbor_route,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *rest.routes(),
    ]
    app = _ApiApp(
        endpoint,
        routes=all_routes,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.authenticator = authenticator
    app.state.json_endpoint = endpoint
    app.state.close_polls = operations.long_poll.close  # PollForTask long-polls (up to poll_wait s)
    return app


class _ApiApp(Starlette):
    """Starlette, with AWS JSON 1.1 calls (POST / with X-Amz-Target: DataPipeline.*) handed
    straight to their endpoint: the route `_PostRoot` would pick for them anyway, without the
    middleware and route matching in between (the endpoint answers every error itself)."""

    def __init__(self, json_endpoint: JsonProtocolEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.json_endpoint = json_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and scope["method"] == "POST":
            for name, value in scope["headers"]:
                if name == b"x-amz-target":
                    if value.startswith(b"DataPipeline."):
                        await self.json_endpoint(scope, receive, send)
                        return
                    break
        await super().__call__(scope, receive, send)


class _PostRoot:
    """POST /: AWS JSON 1.1 when X-Amz-Target is present, else the Query protocol (form-encoded)."""

    def __init__(
        self, json_endpoint: JsonProtocolEndpoint, query_endpoint: QueryEndpoint, cloudwatch_json: Any
    ) -> None:
        self.json_endpoint = json_endpoint
        self.query_endpoint = query_endpoint
        self.cloudwatch_json = cloudwatch_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        form = headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded")
        target = headers.get(b"x-amz-target", b"")
        if not target and form:
            response = await self.query_endpoint(Request(scope, receive))
            await response(scope, receive, send)
        elif target.startswith(b"GraniteServiceVersion20100801."):
            response = await self.cloudwatch_json(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.json_endpoint(scope, receive, send)


def _query_endpoints(
    store: StateStore,
    clock: Clock,
    authenticator: Authenticator,
    topics: TopicService | None,
    alarms: AlarmService | None,
) -> tuple[QueryEndpoint, BaseRoute, Any]:
    """SNS and CloudWatch in the Query protocol at POST /, and CloudWatch's CBOR route."""
    from tailrace.api.cloudwatch import CloudWatchApi
    from tailrace.api.cloudwatch.cbor import PATH, CborEndpoint
    from tailrace.api.sns import SnsApi

    if topics is None:
        from tailrace.notify.topics import TopicService

        topics = TopicService(store.engine, clock)  # type: ignore[attr-defined]
    if alarms is None:
        from tailrace.notify.alarms import AlarmService
        from tailrace.notify.metrics import MetricStore

        alarms = AlarmService(store.engine, clock, MetricStore(store.engine, clock), topics)  # type: ignore[attr-defined]
    cloudwatch = CloudWatchApi(alarms.metrics, alarms)
    endpoint = QueryEndpoint([SnsApi(topics), cloudwatch], authenticator)
    cbor = Route(PATH, CborEndpoint(cloudwatch, authenticator, endpoint).__call__, methods=["POST"])
    return endpoint, cbor, CborEndpoint(cloudwatch, authenticator, endpoint, json=True)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: Exception
    if exc.status_code == 404:
        err = NotFoundRoute(f"no resource at {request.url.path}; see /openapi.json")
    elif exc.status_code == 405:
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        err = InvalidRequest(str(exc.detail))
    return error_response(err, request_id="-", content_type="application/json", rest=True)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(exc, request_id="-", content_type="application/json")
