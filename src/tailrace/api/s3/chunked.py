"""aws-chunked bodies, decoded as they arrive: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n`
chunks, a last chunk of size 0, then optional trailers (`x-amz-checksum-crc32:<base64>`).

With a signed body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) each chunk's signature is chained from the
previous one, the first from the request's. Payload bytes are handed on before their chunk's
signature is checked: the caller writes them to a staged file that becomes the object only once
`finish` has returned.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from tailrace.api.s3.xml import S3Error

if TYPE_CHECKING:
    from tailrace.api.s3.auth import Verified

_EMPTY = hashlib.sha256(b"").hexdigest()
_MAX_LINE = 8192


class ChunkDecoder:
    def __init__(self, verified: Verified | None, *, signed: bool) -> None:
        self.verified = verified if signed else None
        self.prev = verified.seed if verified else ""
        self.trailers: dict[str, str] = {}
        self._buf = bytearray()
        self._state = "head"  # head -> data -> crlf -> head ... -> trailer -> done
        self._left = 0
        self._sig = ""
        self._hash: Any = None

    def feed(self, data: bytes | bytearray) -> bytes:
        """The payload bytes that `data` completes (possibly none)."""
        self._buf += data
        out = bytearray()
        while self._step(out):
            pass
        return bytes(out)

    def finish(self) -> None:
        """The body ended: it must have ended after its last chunk."""
        self.feed(b"")
        if self._state in ("trailer", "done"):
            return
        if self._state == "head":
            raise S3Error("IncompleteBody", "an aws-chunked body ended inside a chunk header", 400)
        raise S3Error("IncompleteBody", "an aws-chunked body is shorter than its chunk sizes", 400)

    def _line(self) -> str | None:
        eol = self._buf.find(b"\r\n")
        if eol < 0:
            if len(self._buf) > _MAX_LINE:
                raise S3Error("InvalidRequest", "an aws-chunked header or trailer line is over 8 KiB", 400)
            return None
        line = bytes(self._buf[:eol]).decode("ascii", "replace")
        del self._buf[: eol + 2]
        return line

    def _step(self, out: bytearray) -> bool:
        """Consume what the buffer allows of the current state; False when it needs more input."""
        if self._state == "head":
            line = self._line()
            if line is None:
                return False
            size_text, _, ext = line.partition(";")
            try:
                self._left = int(size_text, 16)
            except ValueError:
                raise S3Error("InvalidRequest", f"bad aws-chunked chunk size {size_text[:40]!r}", 400)
            self._sig = ext.partition("chunk-signature=")[2].strip()
            self._hash = hashlib.sha256() if self.verified else None
            if self._left == 0:
                self._chunk_done()
                self._state = "trailer"
            else:
                self._state = "data"
            return True
        if self._state == "data":
            if not self._buf:
                return False
            take = min(self._left, len(self._buf))
            piece = self._buf[:take]
            del self._buf[:take]
            if self._hash is not None:
                self._hash.update(piece)
            out += piece
            self._left -= take
            if self._left == 0:
                self._chunk_done()
                self._state = "crlf"
            return True
        if self._state == "crlf":
            if len(self._buf) < 2:
                return False
            if self._buf[:2] != b"\r\n":
                raise S3Error("IncompleteBody", "an aws-chunked chunk is not followed by CRLF", 400)
            del self._buf[:2]
            self._state = "head"
            return True
        if self._state == "trailer":
            line = self._line()
            if line is None:
                return False
            if not line:
                self._state = "done"
                return True
            name, _, value = line.partition(":")
            self.trailers[name.strip().lower()] = value.strip()
            return True
        self._buf.clear()  # done: anything after the final CRLF is not payload
        return False

    def _chunk_done(self) -> None:
        v = self.verified
        if v is None:
            return
        digest = self._hash.hexdigest() if self._hash is not None else _EMPTY
        to_sign = "\n".join(("AWS4-HMAC-SHA256-PAYLOAD", v.amz_date, v.scope, self.prev, _EMPTY, digest))
        good = hmac.new(v.key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, self._sig):
            raise S3Error(
                "SignatureDoesNotMatch", "a chunk signature of the streamed body does not match", 403
            )
        self.prev = self._sig
