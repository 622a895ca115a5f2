"""SigV4 as S3 uses it: the path is signed as sent (no normalization, no second encoding), the
payload hash is the X-Amz-Content-SHA256 header (a hex digest, UNSIGNED-PAYLOAD, or a streaming
mode), and aws-chunked bodies carry a signature per chunk chained from the header's."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime

from tailrace.api import sigv4
from tailrace.api.s3.xml import S3Error

SERVICE = "s3"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_SIGNED_MODES = {UNSIGNED, STREAMING, STREAMING_UNSIGNED_TRAILER}


class Verified:
    """What a good signature gives: the key id, and what is needed to check streamed chunks."""

    def __init__(self, access_key_id: str, seed: str, key: bytes, amz_date: str, scope: str) -> None:
        self.access_key_id = access_key_id
        self.seed = seed
        self.key = key
        self.amz_date = amz_date
        self.scope = scope


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    secret_for: Callable[[str], str | None],
    now: datetime,
) -> Verified:
    lower = {k.lower(): v for k, v in headers}
    header = lower.get("authorization")
    if not header:
        if "x-amz-signature" in raw_query.lower():
            raise S3Error("AccessDenied", "presigned URLs are not supported; sign the headers", 403)
        raise S3Error("AccessDenied", "anonymous access is not allowed; sign with a tailrace access key", 403)
    try:
        auth = sigv4.parse_authorization(header)
    except Exception as exc:
        raise S3Error("AuthorizationHeaderMalformed", str(exc), 400)
    if auth.service != SERVICE:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"credential scope service must be 's3', not {auth.service!r}",
            400,
        )
    missing = [h for h in auth.signed_headers if h not in lower]
    if "host" not in auth.signed_headers or missing:
        raise S3Error("AccessDenied", "the Host header and every SignedHeaders entry must be present", 403)
    amz = lower.get("x-amz-date")
    if not amz:
        raise S3Error("AccessDenied", "a signed request needs an X-Amz-Date header", 403)
    try:
        when = _amz_date(amz).replace(tzinfo=now.tzinfo)
    except ValueError:
        raise S3Error("AccessDenied", f"X-Amz-Date {amz!r} is not YYYYMMDDTHHMMSSZ", 403)
    if abs(now - when) > sigv4.MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed", "the request time is more than 15 minutes from the server's", 403
        )
    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise S3Error(
            "InvalidAccessKeyId", f"access key {auth.access_key_id!r} is not known (or disabled)", 403
        )
    claimed = lower.get("x-amz-content-sha256")
    # body None: the caller streams the body and compares its SHA-256 with the claimed one
    # (payload_mismatch) before anything it wrote becomes visible.
    if claimed is None:
        if body is None:
            raise S3Error(
                "InvalidRequest",
                "Missing required header for this request: x-amz-content-sha256 (a body over 1 MiB,"
                " or of unknown length, is read only after the signature is checked)",
                400,
            )
        claimed = hashlib.sha256(body).hexdigest()
    elif body is not None and claimed not in _SIGNED_MODES and claimed != hashlib.sha256(body).hexdigest():
        raise payload_mismatch()
    canonical = "\n".join(
        (
            method.upper(),
            raw_path or "/",
            sigv4.canonical_query(raw_query),
            sigv4.canonical_headers(headers, auth.signed_headers),
            ";".join(sorted(auth.signed_headers)),
            claimed,
        )
    )
    expected = sigv4.signature(secret, auth, amz, canonical)
    if not hmac.compare_digest(expected, auth.signature):
        raise S3Error(
            "SignatureDoesNotMatch",
            "the signature does not match: check the secret key and the signing method",
            403,
        )
    key = sigv4.signing_key(secret, auth.date, auth.region, auth.service)
    return Verified(auth.access_key_id, auth.signature, key, amz, auth.scope)


def _amz_date(text: str) -> datetime:
    """YYYYMMDDTHHMMSSZ, as strptime reads it but at a tenth of its cost (every request has one)."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z" or not (text[:8] + text[9:15]).isdigit():
        raise ValueError(text)
    return datetime(
        int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]), int(text[13:15])
    )


def payload_mismatch() -> S3Error:
    return S3Error("XAmzContentSHA256Mismatch", "X-Amz-Content-SHA256 does not match the body", 400)
