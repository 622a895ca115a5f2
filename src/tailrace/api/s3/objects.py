"""Object helpers of the S3 API: weak ETags, Range and conditional headers."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.utils import parsedate_to_datetime

from tailrace.api.s3.xml import S3Error


def weak_etag(size: int, modified: datetime) -> str:
    """For objects written outside the API (no recorded MD5): stable while the file is unchanged."""
    return hashlib.md5(f"{size}:{modified.timestamp()}".encode(), usedforsecurity=False).hexdigest()


def byte_range(header: str, size: int) -> tuple[int, int]:
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise S3Error("InvalidRange", "only a single bytes= range is supported", 416)
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            start, end = max(size - n, 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        raise S3Error("InvalidRange", f"bad range {header!r}", 416)
    if start >= size or start > end:
        raise S3Error("InvalidRange", "the requested range is not satisfiable", 416)
    return start, end


def conditions(headers: dict[str, str], etag: str, modified: datetime) -> int | None:
    """304/412 per the conditional headers, or None to go on."""

    def when(name: str) -> datetime | None:
        try:
            return parsedate_to_datetime(headers[name]) if name in headers else None
        except (TypeError, ValueError):
            return None

    mod = modified.replace(microsecond=0)
    if "if-match" in headers and headers["if-match"].strip('"') not in (etag, "*"):
        return 412
    since = when("if-unmodified-since")
    if since is not None and "if-match" not in headers and mod > since:
        return 412
    if "if-none-match" in headers:
        return 304 if headers["if-none-match"].strip('"') in (etag, "*") else None
    since = when("if-modified-since")
    if since is not None and mod <= since:
        return 304
    return None
