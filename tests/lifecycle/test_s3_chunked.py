"""aws-chunked bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) on the example of the SigV4 docs."""

from __future__ import annotations

import pytest

from tailrace.api import sigv4
from tailrace.api.s3.auth import Verified
from tailrace.api.s3.chunked import ChunkDecoder
from tailrace.api.s3.xml import S3Error

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SIGS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def _verified() -> Verified:
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3")
    return Verified(
        "AKIAIOSFODNN7EXAMPLE", SEED, key, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request"
    )


def decode_chunked(body: bytes, verified: Verified, *, signed: bool) -> bytes:
    decoder = ChunkDecoder(verified, signed=signed)
    data = decoder.feed(body)
    decoder.finish()
    return data


def _body(sigs: tuple[str, ...] = SIGS) -> bytes:
    out = b""
    for size, sig in zip((65536, 1024, 0), sigs, strict=True):
        out += f"{size:x};chunk-signature={sig}\r\n".encode() + b"a" * size + b"\r\n"
    return out


def test_the_documented_example_decodes() -> None:
    assert decode_chunked(_body(), _verified(), signed=True) == b"a" * 66560


def test_a_tampered_chunk_is_refused() -> None:
    body = bytearray(_body())
    body[200] = ord("b")
    with pytest.raises(S3Error, match="chunk signature"):
        decode_chunked(bytes(body), _verified(), signed=True)


def test_chunks_reordered_signatures_refused() -> None:
    with pytest.raises(S3Error):
        decode_chunked(_body((SIGS[1], SIGS[0], SIGS[2])), _verified(), signed=True)


def test_truncated_body_is_incomplete() -> None:
    with pytest.raises(S3Error, match="shorter"):
        decode_chunked(_body()[:1000], _verified(), signed=True)


def test_fed_in_pieces_of_any_size_it_decodes_the_same() -> None:
    body = _body()
    for step in (1, 7, 100, 4096):
        decoder = ChunkDecoder(_verified(), signed=True)
        out = b"".join(decoder.feed(body[i : i + step]) for i in range(0, len(body), step))
        decoder.finish()
        assert out == b"a" * 66560


def test_trailers_after_the_last_chunk_are_kept() -> None:
    decoder = ChunkDecoder(None, signed=False)
    out = decoder.feed(b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n")
    decoder.finish()
    assert out == b"abc"
    assert decoder.trailers == {"x-amz-checksum-crc32": "NSRBwg=="}
