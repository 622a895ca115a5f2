"""The S3 REST API over the embedded store: path-style and virtual-host-style addressing, SigV4
with tailrace keys, S3's XML and error codes. Objects are the same files pipelines read.

Every request is handled synchronously in a worker thread (the store is a filesystem); a large
PutObject body is streamed to disk as it arrives (spool.py). Bucket operations are in bucket_ops.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tailrace.api.bodies import receive_all
from tailrace.api.s3 import auth, checksums
from tailrace.api.s3.base import Req, xml_response
from tailrace.api.s3.bucket_ops import BucketOps
from tailrace.api.s3.chunked import ChunkDecoder
from tailrace.api.s3.multipart import Upload
from tailrace.api.s3.objects import byte_range, conditions, weak_etag
from tailrace.api.s3.spool import Spool, streamable
from tailrace.api.s3.xml import S3Error, children, document, http_date, iso, parse, text
from tailrace.errors import NotFoundError
from tailrace.storage import AccessDeniedError, UnsafeKeyError
from tailrace.storage.tiered import ARCHIVE_CLASSES, READABLE_CLASSES, ObjectStateError

MAX_BODY = 5 * 1024**3

_T = TypeVar("_T")
_HANDLERS = ThreadPoolExecutor(40, thread_name_prefix="s3-req")
"""Where requests run (the store is a filesystem). asyncio's own executor hop costs a fraction of
anyio's run_sync (capacity limiter, cancel scopes), which was a third of a small PUT's CPU."""


async def _in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_HANDLERS, fn, *args)


READ_FIRST = 1 << 20
"""A body declared at most this long is read before the signature is checked (one thread hop
for a small request); a longer one, or one of unknown length, only after it."""
MAX_DOCUMENT = 16 << 20
"""Bodies of requests that carry no object data (XML documents: DeleteObjects of 1,000 keys,
CompleteMultipartUpload of 10,000 parts, a lifecycle configuration) are far smaller."""


def _declared_length(scope: dict[str, Any]) -> int:
    """Content-Length, or a length above READ_FIRST when it is missing or not a number (chunked)."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else READ_FIRST + 1
    return 0 if scope["method"] in ("GET", "HEAD", "DELETE") else READ_FIRST + 1


def _carries_data(req: Req) -> bool:
    """PutObject or UploadPart (a body of up to 5 GiB)."""
    return (
        req.method == "PUT"
        and bool(req.key)
        and "x-amz-copy-source" not in req.headers
        and (not req.query or set(req.query) == {"partNumber", "uploadId"})
    )


async def _body(receive: Any, limit: int) -> bytes:
    """The whole body of a request that is not streamed to disk (small, or not a PUT)."""
    return await receive_all(receive, limit, lambda: _too_large(limit))


def _too_large(limit: int) -> S3Error:
    if limit >= MAX_BODY:
        return S3Error("EntityTooLarge", "the body exceeds 5 GiB; use a multipart upload", 400)
    if limit == READ_FIRST:
        return S3Error("IncompleteBody", "the body is longer than its Content-Length", 400)
    return S3Error("MaxMessageLengthExceeded", f"the request body exceeds {limit >> 20} MiB", 400)


class S3Api(BucketOps):
    """The ASGI app: authentication, routing, and the object operations."""

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        rid = os.urandom(8).hex().upper()
        resource = scope.get("path", "")
        try:
            response = await self._stream_put(scope, Request(scope, receive)) if streamable(scope) else None
            if response is None and _declared_length(scope) <= READ_FIRST:
                response = await _in_thread(self._handle, scope, await _body(receive, READ_FIRST))
            elif response is None:  # signature, owner and key checked before a byte is read
                req = await _in_thread(self._request, scope, None)
                body = await _body(receive, MAX_BODY if _carries_data(req) else MAX_DOCUMENT)
                response = await _in_thread(self._route, self._payload(req, body))
        except S3Error as exc:
            exc.resource = exc.resource or resource
            response = Response(exc.body(rid), exc.status, media_type="application/xml")
        except ObjectStateError as exc:
            err = S3Error("InvalidObjectState", exc.message, 403, resource)
            response = Response(err.body(rid), 403, media_type="application/xml")
        except (UnsafeKeyError, AccessDeniedError) as exc:  # a key the store refuses ('..', '/x')
            denied = isinstance(exc, AccessDeniedError)
            err = S3Error(
                "AccessDenied" if denied else "InvalidArgument", str(exc), 403 if denied else 400, resource
            )
            response = Response(err.body(rid), err.status, media_type="application/xml")
        except Exception:  # a bug must not take the server down, nor leak details
            err = S3Error(
                "InternalError", "we encountered an internal error; please try again", 500, resource
            )
            response = Response(err.body(rid), 500, media_type="application/xml")
        if type(response) is Response:  # what Response.__call__ sends, without its headers copy
            headers = [*response.raw_headers, (b"x-amz-request-id", rid.encode())]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
            return
        response.headers["x-amz-request-id"] = rid
        await response(scope, receive, send)

    def _handle(self, scope: dict[str, Any], body: bytes) -> Response:
        return self._route(self._request(scope, body))

    def _route(self, req: Req) -> Response:
        if not req.bucket:
            if req.method == "GET":
                return self.list_buckets(req)
            raise S3Error("MethodNotAllowed", "only GET is allowed on the service", 405)
        if not req.key:
            return self._bucket_op(req)
        return self._object_op(req)

    def _request(self, scope: dict[str, Any], body: bytes | None) -> Req:
        """The verified request; with body None the caller checks the payload's SHA-256 itself."""
        method = scope["method"]
        raw_path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        raw_path = raw_path.split("?", 1)[0]
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lower = {k.lower(): v for k, v in headers}
        verified = auth.verify(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            secret_for=self.secret_for,
            now=self.now(),
        )
        owner = self.owner_for(verified.access_key_id)
        if owner is None:
            raise S3Error("InvalidAccessKeyId", "the access key is not known (or disabled)", 403)
        bucket, key = self._address(lower.get("host", ""), unquote(raw_path))
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        req = Req(method, bucket, key, query, lower, b"", owner, verified)
        return req if body is None else self._payload(req, body, hashed=True)

    def _payload(self, req: Req, body: bytes, *, hashed: bool = False) -> Req:
        """The request with its body: an aws-chunked one decoded (chunk signatures checked),
        any other checked against the signed X-Amz-Content-SHA256 (unless verify did)."""
        mode = req.headers.get("x-amz-content-sha256", "")
        if mode.startswith("STREAMING-") or "aws-chunked" in req.headers.get("content-encoding", ""):
            decoder = ChunkDecoder(req.verified, signed=mode == auth.STREAMING)
            body = decoder.feed(body)
            decoder.finish()
            req.headers.update(checksums.trailing(req.headers, decoder.trailers))  # checked as headers are
        elif not hashed and mode != auth.UNSIGNED and hashlib.sha256(body).hexdigest() != mode:
            raise auth.payload_mismatch()
        req.body = body
        return req

    async def _stream_put(self, scope: dict[str, Any], request: Request) -> Response | None:
        """PutObject of a large body (spool.streamable): signature, owner and key are checked
        before a byte is read; the body goes to a staged file that becomes the object only once
        its SHA-256 matches the signed one, and after fsync. None: not a PutObject, buffer it."""
        staged = await _in_thread(self._stage_put, scope)
        if staged is None:
            return None
        req, out, tmp = staged
        spool: Spool | None = None
        try:
            mode = req.headers.get("x-amz-content-sha256", "")
            decoder = None
            if mode.startswith("STREAMING-"):
                decoder = ChunkDecoder(req.verified, signed=mode == auth.STREAMING)
            trailer = checksums.announced(req.headers)
            wanted = {**req.headers, trailer: ""} if trailer is not None else req.headers
            spool = Spool(out, sha256=len(mode) == 64, checksums=checksums.Checksums(wanted))
            async for chunk in request.stream():
                await spool.feed(decoder.feed(chunk) if decoder is not None else chunk)
                if spool.size > MAX_BODY:
                    raise S3Error("EntityTooLarge", "the body exceeds 5 GiB; use a multipart upload", 400)
            if decoder is not None:
                decoder.finish()
                if trailer is not None:  # checked as a header's would be ('' when it did not come)
                    given = checksums.trailing(req.headers, decoder.trailers)[trailer]
                    spool.checksums.given[trailer[len(checksums.PREFIX) :]] = given
            await spool.finish()
            return await _in_thread(self._commit_put, req, spool, tmp)
        except BaseException:
            try:
                if spool is not None:
                    await spool.drain()
            finally:
                out.close()
                tmp.unlink(missing_ok=True)
            raise

    def _stage_put(self, scope: dict[str, Any]) -> tuple[Req, BinaryIO, Path] | None:
        """Checks as the buffered path makes them, then a staged file: beside the object for
        PutObject, in the upload's directory for UploadPart."""
        req = self._request(scope, None)
        if not (req.bucket and req.key and req.method == "PUT"):
            return None
        if set(req.query) == {"partNumber", "uploadId"}:
            self._own(req)
            up, number = self._part_of(req)
            out, tmp = self.multipart.stage_part(up, number)
            return req, out, tmp
        if req.query:
            return None
        self._own(req)
        self._check_key(req.key)
        self._class(req)
        out, tmp = self.store.stage(req.bucket, req.key)
        return req, out, tmp

    def _commit_put(self, req: Req, spool: Spool, tmp: Path) -> Response:
        spool.out.close()
        if spool.sha256 is not None and spool.sha256.hexdigest() != req.headers.get("x-amz-content-sha256"):
            raise auth.payload_mismatch()
        self._check_md5(req, spool.md5.digest())
        sums = spool.checksums.verify()
        etag = spool.md5.hexdigest()
        if req.query:
            up, number = self._part_of(req)  # checked again: an abort may have come meanwhile
            self.multipart.commit_part(up, number, tmp, etag)
            return Response(status_code=200, headers={"ETag": f'"{etag}"', **sums})
        self.store.adopt(req.bucket, req.key, tmp, storage_class=self._class(req))
        self._write_meta(req, etag, spool.size)
        return Response(status_code=200, headers={"ETag": f'"{etag}"', **sums})

    def _address(self, host: str, path: str) -> tuple[str, str]:
        name = host.rsplit(":", 1)[0].lower()
        suffix = "." + self.domain
        if self.domain and name.endswith(suffix) and name != self.domain:
            return name[: -len(suffix)], path.lstrip("/")  # virtual-host style
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    # --- objects -------------------------------------------------------------------------------

    def _object_op(self, req: Req) -> Response:
        self._own(req)
        q, m = req.query, req.method
        if "uploadId" in q:
            return self._multipart(req)
        if "uploads" in q and m == "POST":
            sc = self._class(req)
            up = self.multipart.create(req.bucket, req.key, req.owner, sc, req.headers.get("content-type"))
            return xml_response(
                document(
                    "InitiateMultipartUploadResult",
                    [("Bucket", req.bucket), ("Key", req.key), ("UploadId", up.upload_id)],
                )
            )
        if "restore" in q and m == "POST":
            return self.restore(req)
        if m == "PUT" and "x-amz-copy-source" in req.headers:
            return self.copy_object(req)
        if m == "PUT" and not q:
            return self.put_object(req)
        if m in ("GET", "HEAD") and not set(q) - {"partNumber", "versionId", "response-content-type"}:
            return self.get_object(req, head=m == "HEAD")
        if m == "DELETE" and not q:
            self.store.delete(req.bucket, req.key)
            self._drop_meta(req.bucket, req.key)
            return Response(status_code=204)
        raise S3Error("NotImplemented", f"{m} on an object with ?{'&'.join(q)} is not implemented", 501)

    def _class(self, req: Req) -> str:
        sc = req.headers.get("x-amz-storage-class", "STANDARD")
        if sc in ARCHIVE_CLASSES:
            raise S3Error(
                "InvalidStorageClass", f"{sc} is reached through lifecycle rules on this store", 400
            )
        if sc not in READABLE_CLASSES:
            raise S3Error("InvalidStorageClass", f"the storage class {sc!r} is not valid", 400)
        return sc

    def _check_key(self, key: str) -> None:
        parts = key.split("/")
        if len(key.encode()) > 1024 or key.endswith("/") or any(p in ("", ".", "..") for p in parts):
            raise S3Error(
                "InvalidArgument",
                f"key {key!r} cannot be stored: empty, '.', '..' segments and keys ending in '/' are refused",
            )

    def put_object(self, req: Req) -> Response:
        self._check_key(req.key)
        sc = self._class(req)
        md5 = hashlib.md5(req.body, usedforsecurity=False)
        self._check_md5(req, md5.digest())
        sums = checksums.checked(req.headers, req.body)
        self.store.put(req.bucket, req.key, req.body, storage_class=sc)
        etag = md5.hexdigest()
        self._write_meta(req, etag, len(req.body))
        return Response(status_code=200, headers={"ETag": f'"{etag}"', **sums})

    def _check_md5(self, req: Req, digest: bytes) -> None:
        given = req.headers.get("content-md5")
        if given is not None and base64.b64encode(digest).decode() != given.strip():
            raise S3Error("BadDigest", "the Content-MD5 you specified did not match what we received")

    def _copy_source(self, req: Req) -> tuple[str, str, BinaryIO]:
        """The bucket, key and an open reader of x-amz-copy-source, with the caller's rights."""
        src = unquote(req.headers["x-amz-copy-source"]).lstrip("/").split("?", 1)[0]
        sbucket, _, skey = src.partition("/")
        self._own(Req("GET", sbucket, skey, {}, {}, b"", req.owner))
        try:
            return sbucket, skey, self.store.open_read(sbucket, skey)  # archived: InvalidObjectState
        except NotFoundError:
            raise S3Error("NoSuchKey", "the specified key does not exist", 404, f"/{sbucket}/{skey}")

    def _upload_part_copy(self, req: Req, up: Upload, number: int) -> Response:
        """UploadPartCopy: the part is the copy source's bytes, or the x-amz-copy-source-range of them."""
        _, _, src = self._copy_source(req)
        with src:
            size = os.fstat(src.fileno()).st_size
            start, length = 0, size
            rng = req.headers.get("x-amz-copy-source-range")
            if rng is not None:
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng.strip())
                if m is None or not int(m[1]) <= int(m[2]) < size:
                    raise S3Error(
                        "InvalidArgument",
                        f"x-amz-copy-source-range {rng!r} is not valid for a source object of size {size}",
                    )
                start, length = int(m[1]), int(m[2]) - int(m[1]) + 1
            staged = self.multipart.stage_part(up, number)
            etag, _ = _copy_staged(src, start, length, *staged)
        self.multipart.commit_part(up, number, staged[1], etag)
        return xml_response(
            document("CopyPartResult", [("LastModified", iso(self.now())), ("ETag", f'"{etag}"')])
        )

    def copy_object(self, req: Req) -> Response:
        """Streamed from the source's open file into a staged one (a copy of a 5 GiB object
        must not hold 5 GiB of the server's memory); the source may be the object itself."""
        self._check_key(req.key)
        sbucket, skey, src = self._copy_source(req)
        sc = self._class(req)
        with src:
            staged = self.store.stage(req.bucket, req.key)
            etag, size = _copy_staged(src, 0, os.fstat(src.fileno()).st_size, *staged)
        self.store.adopt(req.bucket, req.key, staged[1], storage_class=sc)
        old = self._meta(sbucket, skey, size)
        if req.headers.get("x-amz-metadata-directive", "COPY") == "COPY" and old:
            req = Req(req.method, req.bucket, req.key, req.query,
                      {**req.headers, **{f"x-amz-meta-{k}": v for k, v in old.get("metadata", {}).items()},
                       "content-type": old.get("content_type") or ""}, b"", req.owner)  # fmt: skip
        self._write_meta(req, etag, size)
        return xml_response(
            document("CopyObjectResult", [("LastModified", iso(self.now())), ("ETag", f'"{etag}"')])
        )

    def get_object(self, req: Req, *, head: bool) -> Response:
        info = self.store.head(req.bucket, req.key)
        if info is None:
            raise S3Error("NoSuchKey", "the specified key does not exist", 404, f"/{req.bucket}/{req.key}")
        meta = self._meta(req.bucket, req.key, info.size)
        etag = meta.get("etag") or weak_etag(info.size, info.modified)
        headers = {
            "ETag": f'"{etag}"',
            "Last-Modified": http_date(info.modified),
            "Accept-Ranges": "bytes",
            "Content-Type": meta.get("content_type") or "binary/octet-stream",
        }
        headers.update({f"x-amz-meta-{k}": v for k, v in meta.get("metadata", {}).items()})
        if info.storage_class != "STANDARD":
            headers["x-amz-storage-class"] = info.storage_class
        rec = self.store.record(req.bucket, req.key)
        if rec is not None and rec.restore_expiry is not None and self.now() < rec.restore_expiry:
            headers["x-amz-restore"] = (
                f'ongoing-request="false", expiry-date="{http_date(rec.restore_expiry)}"'
            )
        cond = conditions(req.headers, etag, info.modified)
        if cond is not None:
            return Response(status_code=cond, headers={"ETag": headers["ETag"]})
        if head:
            headers["Content-Length"] = str(info.size)
            return Response(status_code=200, headers=headers)
        # Streamed from the open file: memory stays small whatever the size, and a PUT that
        # replaces the object meanwhile (a rename) does not change what this reader gets.
        fh = self.store.open_read(req.bucket, req.key)  # raises InvalidObjectState when archived
        try:
            size = os.fstat(fh.fileno()).st_size
            start, end, status = 0, size - 1, 200
            rng = req.headers.get("range")
            if rng:
                start, end = byte_range(rng, size)
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                status = 206
        except BaseException:
            fh.close()
            raise
        headers["Content-Length"] = str(end - start + 1)
        return StreamingResponse(_chunks(fh, start, end - start + 1), status, headers=headers)

    def restore(self, req: Req) -> Response:
        root = parse(req.body, "RestoreRequest") if req.body.strip() else None
        days_text = text(root, "Days") if root is not None else None
        try:
            days = int(days_text or "1")
        except ValueError:
            raise S3Error("MalformedXML", "RestoreRequest Days must be an integer")
        rec = self.store.record(req.bucket, req.key)
        already = rec is not None and rec.restore_expiry is not None and self.now() < rec.restore_expiry
        try:
            self.store.restore(req.bucket, req.key, days, now=self.now())
        except NotFoundError:
            raise S3Error("NoSuchKey", "the specified key does not exist", 404)
        except ObjectStateError as exc:
            raise S3Error("InvalidObjectState", exc.message, 403)
        return Response(status_code=200 if already else 202)

    def _part_of(self, req: Req) -> tuple[Upload, int]:
        up = self._upload(req)
        try:
            return up, int(req.query["partNumber"])
        except ValueError:
            raise S3Error("InvalidArgument", "partNumber must be an integer")

    def _upload(self, req: Req) -> Upload:
        up = self.multipart.get(req.bucket, req.query["uploadId"], req.key)
        if up.owner != req.owner:
            raise S3Error("AccessDenied", "Access Denied", 403)
        return up

    def _multipart(self, req: Req) -> Response:
        up = self._upload(req)
        m = req.method
        if m == "PUT" and "partNumber" in req.query:
            up, n = self._part_of(req)
            if "x-amz-copy-source" in req.headers:
                return self._upload_part_copy(req, up, n)
            self._check_md5(req, hashlib.md5(req.body, usedforsecurity=False).digest())
            sums = checksums.checked(req.headers, req.body)
            etag = self.multipart.put_part(up, n, req.body)
            return Response(status_code=200, headers={"ETag": f'"{etag}"', **sums})
        if m == "GET":
            parts = [
                ("Part", [("PartNumber", n), ("LastModified", iso(t)), ("ETag", f'"{e}"'), ("Size", s)])
                for n, e, s, t in self.multipart.parts(up)
            ]
            fill = [
                ("Bucket", req.bucket),
                ("Key", req.key),
                ("UploadId", up.upload_id),
                ("IsTruncated", False),
                *parts,
            ]
            return xml_response(document("ListPartsResult", fill))
        if m == "DELETE":
            self.multipart.abort(up)
            return Response(status_code=204)
        if m == "POST":
            self._check_key(req.key)
            root = parse(req.body, "CompleteMultipartUpload")
            wanted = []
            for p in children(root, "Part"):
                try:
                    wanted.append((int(text(p, "PartNumber") or ""), text(p, "ETag") or ""))
                except ValueError:
                    raise S3Error("MalformedXML", "PartNumber must be an integer")
            # Assembled straight into the object's staged file: one copy of the parts, not two.
            out, tmp = self.store.stage(req.bucket, req.key)
            try:
                with out:
                    etag = self.multipart.assemble(up, wanted, out)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self.store.adopt(req.bucket, req.key, tmp, storage_class=up.storage_class)
            size = self.store.head(req.bucket, req.key)
            self._write_meta(
                Req(m, req.bucket, req.key, {}, {"content-type": up.content_type or ""}, b"", req.owner),
                etag,
                size.size if size else 0,
            )
            self.multipart.abort(up)
            fill = [
                ("Location", f"/{req.bucket}/{req.key}"),
                ("Bucket", req.bucket),
                ("Key", req.key),
                ("ETag", f'"{etag}"'),
            ]
            return xml_response(document("CompleteMultipartUploadResult", fill))
        raise S3Error("MethodNotAllowed", f"{m} is not allowed with uploadId", 405)


def _copy_staged(src: BinaryIO, start: int, length: int, out: BinaryIO, tmp: Path) -> tuple[str, int]:
    """Copy length bytes of src from start into the staged file (out, tmp) in 1 MiB pieces and
    close it: (MD5 hex, bytes copied). On failure the staged file is gone."""
    md5 = hashlib.md5(usedforsecurity=False)
    copied = 0
    try:
        with out:
            for piece in _chunks(src, start, length, close=False):
                md5.update(piece)
                out.write(piece)
                copied += len(piece)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return md5.hexdigest(), copied


def _chunks(fh: BinaryIO, start: int, length: int, *, close: bool = True) -> Iterator[bytes]:
    """length bytes of fh from start, in 1 MiB pieces; closes fh (unless told not to)."""
    try:
        fh.seek(start)
        while length > 0 and (piece := fh.read(min(length, 1 << 20))):
            length -= len(piece)
            yield piece
    finally:
        if close:
            fh.close()
