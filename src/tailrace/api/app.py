"""`create_app`: the HTTP surface as one Starlette app, composed from ASGI parts.

POST /                  AWS Data Pipeline JSON 1.1 (boto3 / AWS CLI with endpoint_url)
GET  /api/v1/...        REST API for the console (rest.py)
GET  /openapi.json      the OpenAPI document
GET  /healthz           liveness, no authentication
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tailrace import __version__
from tailrace.api.auth import Authenticator
from tailrace.api.errors import MethodNotAllowed, NotFoundRoute
from tailrace.api.jsonproto import JsonProtocolEndpoint, error_response
from tailrace.api.openapi import openapi_document
from tailrace.api.operations import Operations
from tailrace.api.rest import RestApi
from tailrace.clock import Clock
from tailrace.runtime.errors import InvalidRequest
from tailrace.state import StateStore

if TYPE_CHECKING:
    from tailrace.api.keys import KeyStore
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
    poll_wait: float = 90.0,
) -> Starlette:
    """The API as an ASGI app.

    `routes` are mounted before the API's own (the console adds its pages and push socket here);
    `GET /` answers with an index unless one of them takes it. With `insecure_no_auth` every
    request is accepted and sees every owner's pipelines.
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
    )
    if storage is None:
        from tailrace.storage import Storage

        storage = Storage(home=service.home)  # logs under <home>/logs and <home>/s3 (embedded)
    rest = RestApi(store=store, storage=storage, authenticator=authenticator, service=service)

    async def index(_: Request) -> Response:
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

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    all_routes: list[BaseRoute] = [
        *routes,
        Route("/", endpoint, methods=["POST"]),
        Route("/", index, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *rest.routes(),
    ]
    app = Starlette(
        routes=all_routes,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.authenticator = authenticator
    app.state.json_endpoint = endpoint
    app.state.close_polls = operations.long_poll.close  # PollForTask long-polls (up to poll_wait s)
    return app


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
