"""The Query-protocol endpoint at `POST /` (form-encoded, no X-Amz-Target): SNS and, when
mounted, CloudWatch, chosen by the `Version` parameter (or the credential scope's service).

Per request: check the signature's headers against the service the credential scope names (no
body byte is read for an unsigned or unknown caller), read the form (bounded, then per action),
finish the signature over it, parse the Action's input from the botocore model, run it in a worker
thread, answer in XML.
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
from tailrace.api.auth import Authenticator, PendingCaller
from tailrace.api.errors import AwsError, InvalidSignature, PayloadTooLarge, to_aws_error
from tailrace.api.jsonproto import read_body, request_parts
from tailrace.errors import TailraceError, did_you_mean

log = logging.getLogger(__name__)

MAX_QUERY_BODY = 1024 * 1024
"""Publish takes 256 KiB of message; form encoding can triple it."""
DEFAULT_ACTION_BODY = 64 * 1024
"""Every action that carries no message or data batch: names, ARNs, a few attributes."""
ACTION_BODY_LIMITS = {
    "Publish": MAX_QUERY_BODY,
    "PublishBatch": MAX_QUERY_BODY,
    "PutMetricData": MAX_QUERY_BODY,
    "SetTopicAttributes": 256 * 1024,  # an access or delivery policy document
    "SetSubscriptionAttributes": 256 * 1024,  # a filter policy
    "CreateTopic": 256 * 1024,
    "Subscribe": 256 * 1024,
    "PutMetricAlarm": 256 * 1024,
}
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

    def _begin(self, head: Any) -> tuple[PendingCaller, QueryService | None]:
        """What the headers alone prove (runs before the body is read): the caller's key and,
        when signed, the service its credential scope names."""
        if self.authenticator.insecure_no_auth:
            return self.authenticator.begin(head), None
        auth = dict((k.lower(), v) for k, v in head.headers).get("authorization", "")
        signing = next(iter(self.by_signing))
        if auth.startswith(sigv4.ALGORITHM):
            signing = sigv4.parse_authorization(auth).service
            if signing not in self.by_signing:
                raise InvalidSignature(
                    f"credential scope names service {signing!r}; this endpoint serves "
                    f"{', '.join(sorted(self.by_signing))}"
                )
        return self.authenticator.begin(head, service=signing), self.by_signing[signing]

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        namespace = next(iter(self.by_version.values())).namespace
        try:
            pending, signed_for = await run_sync(self._begin, request_parts(request, b""))
            if signed_for is not None:
                namespace = signed_for.namespace
            body = await read_body(request, MAX_QUERY_BODY, what="the Query API")
            try:
                form = dict(parse_qsl(request.url.query, keep_blank_values=True))
                form.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
            except UnicodeDecodeError:
                raise query.QueryError("MalformedQueryString", "the request body is not UTF-8 form data")
            headers = {k.lower(): v for k, v in request.headers.items()}
            svc = self._pick(form, headers)
            if signed_for is not None and svc is not signed_for:
                raise InvalidSignature(
                    f"the request is signed for {signed_for.signing_name!r} but its Version "
                    f"{form.get('Version')!r} is {svc.service}'s"
                )
            namespace = svc.namespace
            action = form.get("Action", "")
            limit = ACTION_BODY_LIMITS.get(action, DEFAULT_ACTION_BODY)
            if len(body) > limit:
                raise PayloadTooLarge(
                    f"request body of {len(body)} bytes is larger than the limit of {limit} bytes for {action}"
                )
            parts = request_parts(request, body)
            call = functools.partial(self._handle, svc, form, parts, self._base_url(request), pending)
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

    def _handle(
        self,
        svc: QueryService,
        form: dict[str, str],
        parts: Any,
        base_url: str,
        pending: PendingCaller | None = None,
    ) -> Any:
        if pending is None:
            pending = self.authenticator.begin(parts, service=svc.signing_name)
        caller = pending.finish(parts.body)
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
