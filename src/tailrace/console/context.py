"""What every console request works with: the store, the pipeline service, the REST API's
reads and the AWS operations (one implementation of each query and action, shared with the
API), the users and sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tailrace.api.auth import Caller
from tailrace.api.rest import Call, Params, RestApi
from tailrace.clock import Clock
from tailrace.console.auth import Session, Sessions
from tailrace.console.throttle import LoginThrottle
from tailrace.console.users import UserStore

if TYPE_CHECKING:
    from tailrace.api.keys import KeyStore
    from tailrace.api.operations import Operations
    from tailrace.runtime.service import PipelineService
    from tailrace.state import StateStore

UPLOAD_LIMIT = 1024 * 1024
"""Bytes of an uploaded definition (the service's own limit on a definition is smaller)."""


@dataclass(kw_only=True)
class ConsoleContext:
    store: StateStore
    engine: Any
    service: PipelineService
    rest: RestApi
    operations: Operations
    keys: KeyStore | None
    users: UserStore
    sessions: Sessions
    throttle: LoginThrottle
    clock: Clock
    insecure_no_auth: bool = False
    upload_limit: int = UPLOAD_LIMIT

    @staticmethod
    def caller(session: Session) -> Caller:
        return Caller(owner=session.owner)

    def call(
        self,
        fn: Any,
        session: Session,
        path: dict[str, str],
        query: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Any:
        """A REST API read as this session's owner (the API's own ownership checks apply)."""
        return fn(Call(caller=self.caller(session), params=Params(query or {}), path=path, body=body))
