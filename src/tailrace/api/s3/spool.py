"""Large PutObject and UploadPart bodies, streamed to a staged file as they arrive.

Buffering a body whole, then hashing it for SigV4 (SHA-256), hashing it again for the ETag (MD5)
and then writing it made three passes plus two copies of the body, one after the other, all
after the last byte arrived. Here each 1 MiB block is hashed twice and written on three threads at
once (hashlib and file writes release the GIL), while the event loop receives the next block.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from tailrace.api.s3.auth import STREAMING, STREAMING_UNSIGNED_TRAILER, UNSIGNED
from tailrace.api.s3.checksums import Checksums

BLOCK = 1 << 20
"""Bytes handed to the threads at a time: large enough that a thread hop is cheap beside the
hashing of the block, small enough that receiving overlaps the work."""
STREAM_AT = 256 << 10
"""Bodies of at least this many bytes are streamed; smaller ones are buffered (one pass is cheap)."""

_POOL = ThreadPoolExecutor(12, thread_name_prefix="s3-body")


def streamable(scope: dict[str, Any]) -> bool:
    """A PutObject or UploadPart whose body can be streamed: its length is declared and large, and
    it says its SHA-256 (or UNSIGNED-PAYLOAD), or it is aws-chunked in a mode this store decodes
    (chunk signatures, or unsigned with trailers), so the signature can be checked before the
    body is read."""
    if scope["method"] != "PUT":
        return False
    query = scope.get("query_string", b"")
    if query and {k for k, _ in parse_qsl(query.decode("latin-1"))} != {"partNumber", "uploadId"}:
        return False  # PutObject and UploadPart only
    h = {k.lower(): v for k, v in scope["headers"]}
    try:
        length = int(h.get(b"content-length", b"0"))
    except ValueError:
        return False
    mode = h.get(b"x-amz-content-sha256", b"")
    if b"aws-chunked" in h.get(b"content-encoding", b"") or mode.startswith(b"STREAMING-"):
        known = mode in (STREAMING.encode(), STREAMING_UNSIGNED_TRAILER.encode())
    else:
        known = mode == UNSIGNED.encode() or len(mode) == 64
    return length >= STREAM_AT and b"x-amz-copy-source" not in h and known


class Spool:
    """Writes blocks to `out` and hashes them (MD5, and SHA-256 unless the payload is unsigned).
    One block is in flight at a time, so each hash sees the blocks in order."""

    def __init__(self, out: BinaryIO, *, sha256: bool, checksums: Checksums | None = None) -> None:
        self.out = out
        self.checksums = checksums or Checksums({})
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256() if sha256 else None
        self.size = 0
        self._buf = bytearray()
        self._pending: list[asyncio.Future[Any]] = []

    async def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        if len(self._buf) >= BLOCK:
            await self._flush()

    async def finish(self) -> None:
        """Everything received is written (not yet synced) and hashed."""
        if self._buf:
            await self._flush()
        await self.drain()

    async def drain(self) -> None:
        """Wait for the block in flight; its first error is raised once all its jobs are done
        (so none still writes to a file the caller is about to remove)."""
        pending, self._pending = self._pending, []
        if pending:
            results = await asyncio.gather(*pending, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def _flush(self) -> None:
        block, self._buf = self._buf, bytearray()
        await self.drain()
        loop = asyncio.get_running_loop()
        jobs: list[Callable[[bytearray], object]] = [self.out.write, self.md5.update]
        if self.sha256 is not None:
            jobs.append(self.sha256.update)
        if self.checksums:
            jobs.append(self.checksums.update)
        self._pending = [loop.run_in_executor(_POOL, job, block) for job in jobs]
        self.size += len(block)
