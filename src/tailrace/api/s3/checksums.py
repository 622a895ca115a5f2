"""The flexible checksums of PutObject and UploadPart (`x-amz-checksum-<algorithm>` headers).

boto3 (1.36 and later) sends `x-amz-checksum-crc32` with every PutObject by default. S3 checks it
against the body it received and answers BadDigest when they differ, so a body changed on its
way is refused instead of stored; it also echoes the value in its answer. CRC32, SHA-1 and
SHA-256 are checked here; CRC32C and CRC64NVME need native code this store does not carry, so a
request naming them is refused (rather than stored unchecked).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Mapping
from typing import Protocol

from tailrace.api.s3.xml import S3Error

PREFIX = "x-amz-checksum-"
UNCHECKED = ("crc32c", "crc64nvme")


class Hasher(Protocol):
    def update(self, data: bytes | bytearray, /) -> None: ...

    def digest(self) -> bytes: ...


class Crc32:
    """zlib's CRC32 with hashlib's interface (S3 sends it as 4 big-endian bytes, base64)."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | bytearray, /) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _new(algorithm: str) -> Hasher:
    if algorithm == "crc32":
        return Crc32()
    if algorithm == "sha1":
        return hashlib.sha1(usedforsecurity=False)
    return hashlib.sha256()


class Checksums:
    """The checksums a request asks for, fed the body as it arrives, then checked."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.given: dict[str, str] = {}
        self.hashers: dict[str, Hasher] = {}
        for name, value in headers.items():
            if not name.startswith(PREFIX):
                continue
            algorithm = name[len(PREFIX) :]
            if algorithm in ("type", "mode", "algorithm"):
                continue  # not a value: x-amz-checksum-type on CreateMultipartUpload, -mode on GET
            if algorithm in UNCHECKED:
                raise S3Error(
                    "NotImplemented",
                    f"{name}: this store checks CRC32, SHA1 and SHA256 checksums, not {algorithm.upper()}; "
                    "send one of those (boto3: ChecksumAlgorithm='CRC32')",
                    501,
                )
            if algorithm not in ("crc32", "sha1", "sha256"):
                raise S3Error("InvalidRequest", f"{name}: unknown checksum algorithm {algorithm!r}")
            self.given[algorithm] = value.strip()
            self.hashers[algorithm] = _new(algorithm)

    def __bool__(self) -> bool:
        return bool(self.hashers)

    def update(self, data: bytes | bytearray) -> None:
        for h in self.hashers.values():
            h.update(data)

    def verify(self) -> dict[str, str]:
        """The answer's headers (each checksum echoed). :raises S3Error: BadDigest on a mismatch."""
        out = {}
        for algorithm, h in self.hashers.items():
            got = base64.b64encode(h.digest()).decode()
            if got != self.given[algorithm]:
                raise S3Error(
                    "BadDigest",
                    f"the {algorithm.upper()} you specified ({PREFIX}{algorithm}: "
                    f"{self.given[algorithm]}) did not match the calculated checksum ({got})",
                )
            out[PREFIX + algorithm] = got
        return out


def announced(headers: Mapping[str, str]) -> str | None:
    """The x-amz-checksum-* an aws-chunked body says (x-amz-trailer) will follow its last chunk."""
    name = headers.get("x-amz-trailer", "").strip().lower()
    return name if name.startswith(PREFIX) else None


def trailing(headers: Mapping[str, str], trailers: Mapping[str, str]) -> dict[str, str]:
    """The checksums an aws-chunked body carried after its last chunk, as headers to check; the
    announced one is there even when it did not come ('': it fails as a mismatch)."""
    out = {k: v for k, v in trailers.items() if k.startswith(PREFIX)}
    name = announced(headers)
    if name is not None:
        out.setdefault(name, "")
    return out


def checked(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """Check a buffered body's checksums; the answer's headers."""
    sums = Checksums(headers)
    if not sums:
        return {}
    sums.update(body)
    return sums.verify()
