"""AWS-shaped errors, and the one place where domain errors become HTTP responses.

Every error leaves the API as `{"__type": "<namespace>#<Code>", "message": ...}` with the HTTP
status the service used; botocore reads the part after `#` as the error code and raises the
modelled exception class (`client.exceptions.PipelineNotFoundException`, ...).

Two kinds of error reach here. The API's own (AwsError subclasses below: routing, parsing,
signing) carry their code. Domain errors (tailrace.errors and its subclasses in state and
runtime: PipelineNotFound, InvalidRequest, ...) know nothing of HTTP; `domain_codes()` maps
them by class, the nearest class in the error's MRO deciding.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from typing import Any

from tailrace.errors import TailraceError

log = logging.getLogger(__name__)

SERVICE_NS = "com.amazon.setl.webservice"
"""The namespace the service put in front of its modelled errors."""
FRAMEWORK_NS = "com.amazon.coral.service"
"""The namespace of errors raised before an operation runs (auth, routing, parsing)."""


class AwsError(TailraceError):
    """An error as the AWS API reports it: a code, an HTTP status and a message."""

    # Class defaults, set per subclass; DomainError sets them per instance.
    code: str = "InternalServiceError"
    status: int = 500
    namespace: str = SERVICE_NS

    def body(self) -> dict[str, Any]:
        return {"__type": f"{self.namespace}#{self.code}", "message": self.message}


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


@dataclass(frozen=True, slots=True)
class Code:
    """How a domain error is reported: AWS error code and HTTP status (`logged`: a server-side
    failure, written to the server log as well)."""

    code: str
    status: int
    namespace: str = SERVICE_NS
    logged: bool = False


class DomainError(AwsError):
    """A domain error as reported: its class's Code and its own message."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code.code
        self.status = code.status
        self.namespace = code.namespace


INVALID_REQUEST = Code("InvalidRequestException", 400)
INTERNAL = Code("InternalServiceError", 500, logged=True)
UNAVAILABLE_MESSAGE = "the metadata database is busy or unreachable; retry shortly"


@functools.cache
def domain_codes() -> dict[type[BaseException], Code]:
    """The domain error classes and their AWS codes. Built on first use, so clients importing
    this module (for the signing errors) do not load the state and runtime layers."""
    from tailrace.errors import ConfigError, ConflictError, NotFoundError, StorageError, UsageError
    from tailrace.runtime.errors import InvalidRequest, PipelineDeleted
    from tailrace.state import PipelineNotFound, TaskNotFound
    from tailrace.state.sql import StoreBusy

    return {
        StoreBusy: Code(ServiceUnavailable.code, ServiceUnavailable.status, FRAMEWORK_NS),
        PipelineDeleted: Code("PipelineDeletedException", 400),
        PipelineNotFound: Code("PipelineNotFoundException", 400),
        TaskNotFound: Code("TaskNotFoundException", 400),
        InvalidRequest: INVALID_REQUEST,
        NotFoundError: INVALID_REQUEST,
        ConflictError: INVALID_REQUEST,
        UsageError: INVALID_REQUEST,
        StorageError: INTERNAL,
        ConfigError: INTERNAL,
        # Definition, expression and validation errors are the caller's input being wrong.
        TailraceError: INVALID_REQUEST,
    }


def _store_unavailable() -> tuple[type[BaseException], ...]:
    """The database driver's errors for a busy or unreachable database (none when the state
    store was never loaded: then no such error can have been raised)."""
    sa = sys.modules.get("sqlalchemy.exc")
    return (sa.OperationalError, sa.TimeoutError) if sa is not None else ()


def code_for(exc: BaseException) -> Code | None:
    """The Code of the nearest class in `exc`'s MRO that has one, or None."""
    table = domain_codes()
    for cls in type(exc).__mro__:
        found = table.get(cls)
        if found is not None:
            return found
    return None


def to_aws_error(exc: BaseException) -> AwsError:
    """Map any exception to the AWS error a client should see.

    API errors pass as they are; domain errors by their class (see domain_codes). Anything
    unexpected is logged with its traceback and reported as InternalServiceError without
    internal detail.
    """
    if isinstance(exc, AwsError):
        return exc
    code = code_for(exc)
    if code is not None:
        message = exc.message if isinstance(exc, TailraceError) else str(exc)
        if code.logged:
            log.error("server-side failure while serving an API request: %s", message)
        return DomainError(code, message)
    if isinstance(exc, _store_unavailable()):
        log.warning("metadata database unavailable while serving an API request: %s", exc)
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    log.exception("internal error while serving an API request", exc_info=exc)
    return InternalServiceError("internal error; the server log has the details")
