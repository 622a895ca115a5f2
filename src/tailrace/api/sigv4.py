"""AWS Signature Version 4 verification (header form), written from the public specification.

A signed request carries
`Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request,
SignedHeaders=<h1;h2;...>, Signature=<hex>` and an `X-Amz-Date` (or `Date`) header. The server
rebuilds the canonical request from what it received, derives the signing key from the secret it
holds for the key id, and compares signatures in constant time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from tailrace.api.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+"
    r"Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-fA-F]{64})\s*$"
)
_SPACES = re.compile(r"\s+")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Authorization:
    """The parts of a SigV4 Authorization header."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(header: str) -> Authorization:
    """Split the header. :raises IncompleteSignature: naming what is malformed."""
    if not header.startswith(ALGORITHM):
        algo = header.split(" ", 1)[0]
        raise IncompleteSignature(
            f"unsupported authorization scheme {algo!r}; expected {ALGORITHM} (AWS Signature Version 4)"
        )
    m = _AUTH.match(header)
    if m is None:
        raise IncompleteSignature(
            "authorization header must be 'AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, "
            "SignedHeaders=..., Signature=<64 hex digits>'"
        )
    parts = m["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise IncompleteSignature(
            f"credential {m['credential']!r} must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request"
        )
    signed = tuple(m["signed"].lower().split(";"))
    return Authorization(
        access_key_id=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=signed,
        signature=m["signature"].lower(),
    )


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_uri(raw_path: str) -> str:
    """The path with dot segments removed, percent-encoded once more (every service but S3)."""
    if raw_path == "/":
        return "/"  # every AWS JSON call
    segments: list[str] = []
    for seg in raw_path.split("/")[1:]:
        if seg == "..":
            if segments:
                segments.pop()
        elif seg != ".":
            segments.append(seg)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and path != "/":
        path += "/"
    return quote(path, safe="/-_.~")


def canonical_query(raw_query: str) -> str:
    if not raw_query:
        return ""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((_uri_encode(unquote(key)), _uri_encode(unquote(value))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_headers(headers: Iterable[tuple[str, str]], signed: Iterable[str]) -> str:
    wanted = set(signed)
    values: dict[str, list[str]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in wanted:
            values.setdefault(lname, []).append(_SPACES.sub(" ", value.strip()))
    return "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in sorted(wanted))


def canonical_request(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    signed_headers: Iterable[str],
    payload_hash: str,
) -> str:
    signed = list(signed_headers)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            canonical_headers(headers, signed),
            ";".join(sorted(signed)),
            payload_hash,
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(secret: str, auth: Authorization, amz_date: str, canonical: str) -> str:
    key = signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(
        key, string_to_sign(amz_date, auth.scope, canonical).encode("utf-8"), hashlib.sha256
    ).hexdigest()


def _request_time(headers: dict[str, str]) -> tuple[str, datetime]:
    if "x-amz-date" in headers:
        text = headers["x-amz-date"]
        try:
            # Sliced by hand: strptime costs more than the rest of the header checks together.
            if not _AMZ_DATE.fullmatch(text):
                raise ValueError(text)
            when = datetime(
                int(text[0:4]), int(text[4:6]), int(text[6:8]),
                int(text[9:11]), int(text[11:13]), int(text[13:15]), tzinfo=UTC,
            )  # fmt: skip
            return text, when
        except ValueError:
            raise IncompleteSignature(f"X-Amz-Date {text!r} is not in the form YYYYMMDDTHHMMSSZ")
    if "date" in headers:
        try:
            when = parsedate_to_datetime(headers["date"]).astimezone(UTC)
        except (TypeError, ValueError):
            raise IncompleteSignature(f"Date header {headers['date']!r} is not an HTTP date")
        return when.strftime("%Y%m%dT%H%M%SZ"), when
    raise IncompleteSignature("a signed request needs an X-Amz-Date (or Date) header")


def must_be_signed(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The headers present that AWS requires in SignedHeaders: Host, Content-Type, and every
    x-amz-* header (X-Amz-Target names the operation: unsigned, a captured request could be
    replayed as another operation)."""
    names = {name.lower() for name, _ in headers}
    return {"host"} | {n for n in names if n == "content-type" or n.startswith("x-amz-")}


@dataclass(frozen=True, kw_only=True, slots=True)
class Pending:
    """A request whose headers passed every check; `finish(body)` checks the signature over it.

    When the client declared the payload's hash (X-Amz-Content-SHA256) the signature is already
    checked (`signature_checked`) and `finish` only compares the body with that hash."""

    auth: Authorization
    secret: str = field(repr=False)
    amz_date: str
    canonical_prefix: tuple[str, str, str, str, str]
    declared_hash: str | None
    signature_checked: bool

    def finish(self, body: bytes) -> Authorization:
        payload_hash = hashlib.sha256(body).hexdigest()
        if self.declared_hash is not None and self.declared_hash != payload_hash:
            raise InvalidSignature("X-Amz-Content-SHA256 does not match the SHA-256 of the request body")
        if not self.signature_checked:
            _check_signature(self, payload_hash)
        return self.auth


def _check_signature(pending: Pending, payload_hash: str) -> None:
    canonical = "\n".join((*pending.canonical_prefix, payload_hash))
    expected = signature(pending.secret, pending.auth, pending.amz_date, canonical)
    if not hmac.compare_digest(expected, pending.auth.signature):
        raise InvalidSignature(
            f"signature mismatch for access key {pending.auth.access_key_id!r}: the request was not signed "
            "with this key's secret, or was changed after signing (check the secret and any proxy "
            "rewriting headers)"
        )


def verify_headers(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    secret_for: Callable[[str], str | None],
    now: datetime,
    service: str,
    max_skew: timedelta = MAX_SKEW,
) -> Pending:
    """Everything that can be checked before the body is read: the header's form, the signed
    header set, the time, the key; and the signature itself when the payload hash is declared.

    `secret_for(access_key_id)` gives the secret of an active key, or None.
    :raises MissingAuthenticationToken, IncompleteSignature, UnrecognizedClient, InvalidSignature:
    """
    lower = {name.lower(): value for name, value in headers}
    header = lower.get("authorization")
    if not header:
        if "x-amz-signature" in raw_query.lower() or "x-amz-credential" in raw_query.lower():
            raise IncompleteSignature("presigned (query string) requests are not accepted; sign the headers")
        raise MissingAuthenticationToken(
            "missing authentication: sign the request with AWS Signature Version 4 using a tailrace access "
            "key (see `tailrace keys create`)"
        )
    auth = parse_authorization(header)
    if auth.service != service:
        raise InvalidSignature(
            f"credential scope names service {auth.service!r}; this endpoint signs as {service!r}"
        )
    unsigned = sorted(must_be_signed(headers) - set(auth.signed_headers))
    if unsigned:
        raise IncompleteSignature(
            f"header(s) {', '.join(unsigned)} must be among the SignedHeaders (Host, Content-Type and "
            "every x-amz-* header are signed)"
        )
    missing = [h for h in auth.signed_headers if h not in lower]
    if missing:
        raise IncompleteSignature(f"signed header(s) {', '.join(missing)} not present in the request")
    amz_date, when = _request_time(lower)
    if amz_date[:8] != auth.date:
        raise InvalidSignature(f"credential date {auth.date} does not match the request date {amz_date[:8]}")
    if abs(now - when) > max_skew:
        raise InvalidSignature(
            f"signature expired or not yet valid: request time {amz_date} is more than "
            f"{int(max_skew.total_seconds() // 60)} minutes from the server time {now:%Y%m%dT%H%M%SZ}"
        )
    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise UnrecognizedClient(
            f"access key {auth.access_key_id!r} is not known to this server (or is disabled)"
        )
    declared = lower.get("x-amz-content-sha256")
    if declared is not None and not _HEX64.fullmatch(declared):
        raise IncompleteSignature("X-Amz-Content-SHA256 must be the hex SHA-256 of the body (64 digits)")
    signed = sorted(auth.signed_headers)
    prefix = (
        method.upper(),
        canonical_uri(raw_path),
        canonical_query(raw_query),
        canonical_headers(headers, signed),
        ";".join(signed),
    )
    pending = Pending(
        auth=auth,
        secret=secret,
        amz_date=amz_date,
        canonical_prefix=prefix,
        declared_hash=declared,
        signature_checked=declared is not None,
    )
    if declared is not None:
        _check_signature(pending, declared)  # the body is trusted only if it matches, in finish()
    return pending


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime,
    service: str,
    max_skew: timedelta = MAX_SKEW,
) -> Authorization:
    """Check a whole request's signature (headers, then body); return its Authorization."""
    return verify_headers(
        method=method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        secret_for=secret_for,
        now=now,
        service=service,
        max_skew=max_skew,
    ).finish(body)


def sign(
    *,
    method: str,
    host: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    access_key_id: str,
    secret: str,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """The headers to send: `headers` plus Host, X-Amz-Date and Authorization (every header
    given is signed). For tailrace's own client commands; servers only verify."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = {**headers, "Host": host, "X-Amz-Date": amz_date}
    signed = sorted(name.lower() for name in out)
    auth = Authorization(
        access_key_id=access_key_id,
        date=amz_date[:8],
        region=region,
        service=service,
        signed_headers=tuple(signed),
        signature="",
    )
    canonical = canonical_request(
        method=method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=list(out.items()),
        signed_headers=signed,
        payload_hash=hashlib.sha256(body).hexdigest(),
    )
    out["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{auth.scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature(secret, auth, amz_date, canonical)}"
    )
    return out
