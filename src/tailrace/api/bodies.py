"""Reading a request body from the raw ASGI receive channel, bounded: shared by the JSON API
and the S3 endpoint, each with its own error for a body past its limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect


async def receive_all(receive: Any, limit: int, too_large: Callable[[], BaseException]) -> bytes:
    """Every body message of the request, refused with `too_large()` as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large()
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
