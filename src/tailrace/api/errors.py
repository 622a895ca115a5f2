"""AWS-shaped errors, and the one place where domain errors become HTTP responses.

Every error leaves the API as `{"__type": "<namespace>#<Code>", "message": ...}` with the HTTP
status the service used; botocore reads the part after `#` as the error code and raises the
modelled exception class (`client.exceptions.PipelineNotFoundException`, ...).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from tailrace.errors import ConfigError, ConflictError, NotFoundError, StorageError, TailraceError, UsageError

log = logging.getLogger(__name__)

SERVICE_NS = "com.amazon.setl.webservice"
"""The namespace the service put in front of its modelled errors."""
FRAMEWORK_NS = "com.amazon.coral.service"
"""The namespace of errors raised before an operation runs (auth, routing, parsing)."""


class AwsError(TailraceError):
    """An error as the AWS API reports it: a code, an HTTP status and a message."""

    code: ClassVar[str] = "InternalServiceError"
    status: ClassVar[int] = 500
    namespace: ClassVar[str] = SERVICE_NS

    def body(self) -> dict[str, Any]:
        return {"__type": f"{self.namespace}#{self.code}", "message": self.message}


class InvalidRequest(AwsError):
    code = "InvalidRequestException"
    status = 400


class PipelineNotFound(AwsError):
    code = "PipelineNotFoundException"
    status = 400


class PipelineDeleted(AwsError):
    code = "PipelineDeletedException"
    status = 400


class TaskNotFound(AwsError):
    code = "TaskNotFoundException"
    status = 400


class InternalServiceError(AwsError):
    code = "InternalServiceError"
    status = 500


class UnknownOperation(AwsError):
    code = "UnknownOperationException"
    status = 400
    namespace = FRAMEWORK_NS


class SerializationError(AwsError):
    """The body is not JSON (or not a JSON object)."""

    code = "SerializationException"
    status = 400
    namespace = FRAMEWORK_NS


class MissingAuthenticationToken(AwsError):
    code = "MissingAuthenticationTokenException"
    status = 403
    namespace = FRAMEWORK_NS


class IncompleteSignature(AwsError):
    """An Authorization header that is not a well-formed SigV4 header."""

    code = "IncompleteSignatureException"
    status = 403
    namespace = FRAMEWORK_NS


class UnrecognizedClient(AwsError):
    code = "UnrecognizedClientException"
    status = 403
    namespace = FRAMEWORK_NS


class InvalidSignature(AwsError):
    code = "InvalidSignatureException"
    status = 403
    namespace = FRAMEWORK_NS


class ServiceUnavailable(AwsError):
    """The metadata database is busy or unreachable; clients (botocore) retry 503s."""

    code = "ServiceUnavailableException"
    status = 503
    namespace = FRAMEWORK_NS


class NotFoundRoute(AwsError):
    """REST: no such resource (path)."""

    code = "ResourceNotFoundException"
    status = 404
    namespace = FRAMEWORK_NS


class MethodNotAllowed(AwsError):
    code = "MethodNotAllowedException"
    status = 405
    namespace = FRAMEWORK_NS


class PayloadTooLarge(AwsError):
    code = "RequestEntityTooLargeException"
    status = 413
    namespace = FRAMEWORK_NS


def _class_named(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def to_aws_error(exc: BaseException) -> AwsError:
    """Map any exception to the AWS error a client should see.

    Domain errors are matched by family (and, for the few the API names, by class name, so the
    runtime and state layers need not know about HTTP). Anything unexpected is logged with its
    traceback and reported as InternalServiceError without internal detail.
    """
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, TailraceError):
        message = exc.message
        if _class_named(exc, "PipelineDeleted", "PipelineDeletedError"):
            return PipelineDeleted(message)
        if _class_named(exc, "PipelineNotFound", "PipelineNotFoundError"):
            return PipelineNotFound(message)
        if _class_named(exc, "TaskNotFound", "TaskNotFoundError"):
            return TaskNotFound(message)
        if _class_named(exc, "StoreBusy"):
            log.warning("metadata database busy while serving an API request: %s", message)
            return ServiceUnavailable("the metadata database is busy; retry shortly")
        if isinstance(exc, NotFoundError | ConflictError | UsageError):
            return InvalidRequest(message)
        if isinstance(exc, StorageError | ConfigError):
            log.error("server-side failure while serving an API request: %s", message)
            return InternalServiceError(message)
        # Definition, expression and validation errors are the caller's input being wrong.
        return InvalidRequest(message)
    if isinstance(exc, OverflowError):
        return InvalidRequest(f"a date or number in the request is out of range: {exc}")
    if isinstance(exc, RecursionError):
        return InvalidRequest("the request is nested too deeply to process")
    if type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ == "DataError":
        # A value the database cannot hold (a NUL in text on PostgreSQL): the caller's input.
        return InvalidRequest("a value in the request cannot be stored (control characters such as NUL?)")
    if type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ in (
        "OperationalError",
        "TimeoutError",
    ):
        log.warning("metadata database unavailable while serving an API request: %s", exc)
        return ServiceUnavailable("the metadata database is busy or unreachable; retry shortly")
    log.exception("internal error while serving an API request", exc_info=exc)
    return InternalServiceError("internal error; the server log has the details")
