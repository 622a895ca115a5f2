"""Errors of topics, subscriptions and alarms. Each carries the code the AWS service reports for
it, so the wire layer needs no table of its own (the code decides the HTTP status there)."""

from __future__ import annotations

from typing import ClassVar

from tailrace.errors import TailraceError


class NotifyError(TailraceError):
    code: ClassVar[str] = "InvalidParameter"


class InvalidParameter(NotifyError):
    code = "InvalidParameter"

    def __init__(self, message: str) -> None:
        super().__init__(f"Invalid parameter: {message}")


class NotFound(NotifyError, LookupError):
    code = "NotFound"


class AuthorizationError(NotifyError):
    code = "AuthorizationError"


class ResourceNotFound(NotifyError, LookupError):
    code = "ResourceNotFound"


class TagLimitExceeded(NotifyError):
    code = "TagLimitExceeded"


class BatchError(NotifyError):
    """One of PublishBatch's whole-request errors (EmptyBatchRequest, TooManyEntriesInBatchRequest,
    BatchEntryIdsNotDistinct, InvalidBatchEntryId, BatchRequestTooLong)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
