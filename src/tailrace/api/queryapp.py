"""The Query-protocol endpoint at `POST /` (form-encoded, no X-Amz-Target): SNS and, when
mounted, CloudWatch, chosen by the `Version` parameter (or the credential scope's service).

Per request: read the form (bounded), authenticate with SigV4 against the service's signing
name, parse the Action's input from the botocore model, run it in a worker thread, answer in XML.
Also the two unsigned links SNS puts in its messages: `GET /?Action=ConfirmSubscription&...` (the
token is the credential) and `GET /?Action=Unsubscribe&SubscriptionArn=...`.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import Response

from tailrace.api import query, sigv4
from tailrace.api.auth import Authenticator
from tailrace.api.errors import AwsError, to_aws_error
from tailrace.api.jsonproto import read_body, request_parts
from tailrace.errors import TailraceError, did_you_mean

log = logging.getLogger(__name__)

MAX_QUERY_BODY = 1024 * 1024
"""Publish takes 256 KiB of message; form encoding can triple it."""
XML = "text/xml"
_FRAMEWORK_CODES = {
    "UnrecognizedClientException": "InvalidClientTokenId",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
    "InvalidRequestException": "InvalidParameter",
    "InternalServiceError": "InternalError",
    "ServiceUnavailableException": "ServiceUnavailable",
    "RequestEntityTooLargeException": "RequestEntityTooLarge",
}
"""The Query services' names for the errors raised before an action runs."""


class QueryService(Protocol):
    service: str
    version: str
    signing_name: str
    namespace: str

    @property
    def actions(self) -> Mapping[str, Any]: ...

    def handle(
        self, action: str, scope: Any, params: dict[str, Any], base_url: str
    ) -> Mapping[str, Any] | None: ...


def _scope(owner: str | None, region: str) -> Any:
    from tailrace.notify.topics import Scope

    return Scope(owner=owner, region=region)


class QueryEndpoint:
    def __init__(self, services: Sequence[QueryService], authenticator: Authenticator) -> None:
        self.by_version = {s.version: s for s in services}
        self.by_signing = {s.signing_name: s for s in services}
        self.authenticator = authenticator

    def _pick(self, form: Mapping[str, str], headers: Mapping[str, str]) -> QueryService:
        version = form.get("Version")
        if version:
            svc = self.by_version.get(version)
            if svc is None:
                raise query.QueryError(
                    "InvalidParameterValue",
                    f"Version {version!r} is not served here; expected one of {', '.join(sorted(self.by_version))}",
                )
            return svc
        auth = headers.get("authorization", "")
        if auth.startswith(sigv4.ALGORITHM):
            try:
                signing = sigv4.parse_authorization(auth).service
            except AwsError:
                signing = ""
            if signing in self.by_signing:
                return self.by_signing[signing]
        raise query.QueryError("MissingParameter", "The request must contain the parameter Version")

    def _base_url(self, request: Request) -> str:
        # Links in messages use the service's configured address, never the request's Host
        # header: a caller must not make tailrace sign a SubscribeURL pointing elsewhere.
        return ""

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        namespace = next(iter(self.by_version.values())).namespace
        try:
            body = await read_body(request, MAX_QUERY_BODY)
            try:
                form = dict(parse_qsl(request.url.query, keep_blank_values=True))
                form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
            except UnicodeDecodeError:
                raise query.QueryError("MalformedQueryString", "the request body is not UTF-8 form data")
            headers = {k.lower(): v for k, v in request.headers.items()}
            svc = self._pick(form, headers)
            namespace = svc.namespace
            parts = request_parts(request, body)
            call = functools.partial(self._handle, svc, form, parts, self._base_url(request))
            result = await run_sync(call)
            payload = query.render_response(
                query.service_model(svc.service).operation_model(form["Action"]),
                result,
                request_id=request_id,
                namespace=namespace,
            )
            return Response(payload, media_type=XML, headers={"x-amzn-RequestId": request_id})
        except Exception as exc:
            return self.error(exc, request_id, namespace)

    def _handle(self, svc: QueryService, form: dict[str, str], parts: Any, base_url: str) -> Any:
        caller = self.authenticator.authenticate(parts, service=svc.signing_name)
        action = self._action(svc, form)
        region = _region(dict((k.lower(), v) for k, v in parts.headers))
        params = query.parse_params(
            query.service_model(svc.service).operation_model(action), form, service=svc.service
        )
        return svc.handle(action, _scope(caller.owner, region), params, base_url)

    @staticmethod
    def _action(svc: QueryService, form: Mapping[str, str]) -> str:
        action = form.get("Action")
        if not action:
            raise query.QueryError("MissingAction", "The request must contain the parameter Action")
        if action not in svc.actions:
            hint = did_you_mean(action, svc.actions)
            raise query.QueryError(
                "InvalidAction",
                f"The action {action} is not valid for this web service ({svc.service}).{hint}",
            )
        return action

    def error(self, exc: BaseException, request_id: str, namespace: str) -> Response:
        err = self._as_query_error(exc)
        return Response(
            query.render_error(err, request_id=request_id, namespace=namespace),
            status_code=err.query_status,
            media_type=XML,
            headers={"x-amzn-RequestId": request_id},
        )

    def _as_query_error(self, exc: BaseException) -> query.QueryError:
        if isinstance(exc, query.QueryError):
            return exc
        code = getattr(exc, "code", None)
        if isinstance(exc, TailraceError) and isinstance(code, str) and not isinstance(exc, AwsError):
            # A domain error carrying its service's code (tailrace.notify.errors).
            owner = next(
                (s.service for s in self.by_version.values() if code in query.error_codes(s.service)), "sns"
            )
            return query.error_for(owner, code, exc.message)
        aws = to_aws_error(exc)
        return query.QueryError(
            _FRAMEWORK_CODES.get(aws.code, aws.code), aws.message, status=aws.status, sender=aws.status < 500
        )

    async def link(self, request: Request) -> Response:
        """GET /?Action=ConfirmSubscription|Unsubscribe: the links in SNS's messages."""
        request_id = str(uuid.uuid4())
        sns = self.by_signing.get("sns")
        namespace = sns.namespace if sns else ""
        try:
            form = dict(request.query_params)
            if sns is None:
                raise query.QueryError("InvalidAction", "topics are not served here")
            action = form.get("Action")
            if action == "ConfirmSubscription":
                params = {"TopicArn": form.get("TopicArn", ""), "Token": form.get("Token", "")}
            elif action == "Unsubscribe":
                params = {"SubscriptionArn": form.get("SubscriptionArn", "")}
            else:
                raise query.QueryError(
                    "InvalidAction",
                    "only ConfirmSubscription and Unsubscribe links are served without a signature",
                )
            call = functools.partial(self._link, sns, action, params)
            result = await run_sync(call)
            op = query.service_model("sns").operation_model(action)
            payload = query.render_response(op, result, request_id=request_id, namespace=namespace)
            return Response(payload, media_type=XML, headers={"x-amzn-RequestId": request_id})
        except Exception as exc:
            return self.error(exc, request_id, namespace)

    @staticmethod
    def _link(sns: Any, action: str, params: dict[str, str]) -> Mapping[str, Any] | None:
        topics = sns.topics
        if action == "ConfirmSubscription":
            return {"SubscriptionArn": topics.confirm(params["TopicArn"], params["Token"])}
        topics.unsubscribe_by_link(params["SubscriptionArn"])
        return None


def _region(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    if auth.startswith(sigv4.ALGORITHM):
        try:
            return sigv4.parse_authorization(auth).region
        except AwsError:
            pass
    return "us-east-1"
