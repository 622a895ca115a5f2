"""Who is calling: SigV4 against tailrace-issued keys, or nobody checked (`--insecure-no-auth`)."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailrace.api import sigv4
from tailrace.api.errors import IncompleteSignature, InvalidSignature, UnrecognizedClient
from tailrace.clock import Clock

if TYPE_CHECKING:
    from tailrace.api.keys import KeyStore

SIGNING_NAME = "datapipeline"
"""The service name in the credential scope, as botocore's model says (`signingName`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Caller:
    """The authenticated principal. `owner` None means unrestricted (authentication is off)."""

    owner: str | None
    access_key_id: str | None = None

    def owns(self, owner: str | None) -> bool:
        return self.owner is None or self.owner == (owner or "")

    @property
    def owner_for_new(self) -> str:
        """The owner recorded on pipelines this caller creates."""
        from tailrace.api.keys import DEFAULT_OWNER

        return self.owner if self.owner is not None else DEFAULT_OWNER


ANONYMOUS = Caller(owner=None)


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestParts:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True, kw_only=True, slots=True)
class PendingCaller:
    """A caller whose headers are checked; `finish(body)` completes the check over the body."""

    caller: Caller | None = None
    pending: sigv4.Pending | None = None
    keys: KeyStore | None = None

    def finish(self, body: bytes) -> Caller:
        if self.caller is not None:
            return self.caller
        assert self.pending is not None and self.keys is not None
        auth = self.pending.finish(body)
        key = self.keys.lookup(auth.access_key_id)
        if key is None:  # disabled between the two lookups
            raise UnrecognizedClient(f"access key {auth.access_key_id!r} is not known to this server")
        return Caller(owner=key.owner, access_key_id=key.access_key_id)

    def finish_cached(self, body: bytes) -> Caller | None:
        """`finish` without any database read (for the event loop): None when the key has left
        the cache meanwhile; errors as by `finish`."""
        if self.caller is not None:
            return self.caller
        assert self.pending is not None and self.keys is not None
        auth = self.pending.finish(body)
        key = self.keys.cached(auth.access_key_id)
        if key is None:
            return None
        return Caller(owner=key.owner, access_key_id=key.access_key_id)


class Authenticator:
    """Turns a request into a Caller or raises the AWS auth error a client should see."""

    def __init__(self, keys: KeyStore | None, clock: Clock, *, insecure_no_auth: bool = False) -> None:
        if keys is None and not insecure_no_auth:
            raise ValueError("an Authenticator needs a KeyStore unless insecure_no_auth is set")
        self.keys = keys
        self.clock = clock
        self.insecure_no_auth = insecure_no_auth

    def _secret_for(self, access_key_id: str) -> str | None:
        assert self.keys is not None
        return self.keys.secret_for(access_key_id)

    def authenticate(
        self, req: RequestParts, *, allow_basic: bool = False, service: str = SIGNING_NAME
    ) -> Caller:
        """Check a whole request (headers and the body in `req`); `service` is the signing name
        the credential scope must carry (datapipeline, sns, monitoring...)."""
        return self.begin(req, allow_basic=allow_basic, service=service).finish(req.body)

    def begin(
        self, req: RequestParts, *, allow_basic: bool = False, service: str = SIGNING_NAME
    ) -> PendingCaller:
        """Check what the headers alone can prove, before a byte of the body is read: an
        unsigned, malformed, expired or unknown-key request is refused here. `req.body` is
        ignored; `finish(body)` checks the signature over the body that is then read."""
        if self.insecure_no_auth:
            return PendingCaller(caller=ANONYMOUS)
        assert self.keys is not None
        if allow_basic:
            basic = _basic_credentials(req.headers)
            if basic is not None:
                return PendingCaller(caller=self._basic(*basic))
        pending = sigv4.verify_headers(
            method=req.method,
            raw_path=req.raw_path,
            raw_query=req.raw_query,
            headers=req.headers,
            secret_for=self._secret_for,
            now=self.clock.now(),
            service=service,
        )
        return PendingCaller(pending=pending, keys=self.keys)

    def begin_cached(self, req: RequestParts, *, service: str = SIGNING_NAME) -> PendingCaller | None:
        """`begin` without any database read: None when the key is not in the cache (then call
        `begin` off the event loop). Errors that the headers alone prove are raised as by `begin`."""
        if self.insecure_no_auth:
            return PendingCaller(caller=ANONYMOUS)
        assert self.keys is not None
        keys = self.keys

        def secret_for(access_key_id: str) -> str | None:
            key = keys.cached(access_key_id)
            if key is None:
                raise _NotCached
            return key.secret_access_key

        try:
            pending = sigv4.verify_headers(
                method=req.method,
                raw_path=req.raw_path,
                raw_query=req.raw_query,
                headers=req.headers,
                secret_for=secret_for,
                now=self.clock.now(),
                service=service,
            )
        except _NotCached:
            return None
        return PendingCaller(pending=pending, keys=keys)

    def _basic(self, key_id: str, secret: str) -> Caller:
        assert self.keys is not None
        key = self.keys.lookup(key_id)
        if key is None:
            raise UnrecognizedClient(f"access key {key_id!r} is not known to this server (or is disabled)")
        if not hmac.compare_digest(key.secret_access_key.encode(), secret.encode()):
            raise InvalidSignature(f"wrong secret for access key {key_id!r}")
        return Caller(owner=key.owner, access_key_id=key.access_key_id)


class _NotCached(Exception):
    """The key is not in the cache: `begin_cached` gives way to `begin`."""


def _basic_credentials(headers: list[tuple[str, str]]) -> tuple[str, str] | None:
    for name, value in headers:
        if name.lower() == "authorization" and value[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise IncompleteSignature("Basic authorization must be base64 of ACCESS_KEY_ID:SECRET")
            key_id, sep, secret = decoded.partition(":")
            if not sep or not key_id:
                raise IncompleteSignature("Basic authorization must be base64 of ACCESS_KEY_ID:SECRET")
            return key_id, secret
    return None
