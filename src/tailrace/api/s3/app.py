"""The S3 REST API over the embedded store: path-style and virtual-host-style addressing, SigV4
with tailrace keys, S3's XML and error codes. Objects are the same files pipelines read.

Every request is handled synchronously in a worker thread (the store is a filesystem).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tailrace.api.s3 import auth
from tailrace.api.s3.buckets import Buckets, check_bucket_name
from tailrace.api.s3.multipart import Multipart
from tailrace.api.s3.objects import byte_range, conditions, weak_etag
from tailrace.api.s3.xml import S3Error, children, document, http_date, iso, parse, text
from tailrace.errors import NotFoundError, StorageError
from tailrace.lifecycle.configs import LifecycleConfigs
from tailrace.lifecycle.rules import LifecycleError, parse_xml, to_xml
from tailrace.storage.tiered import ARCHIVE_CLASSES, READABLE_CLASSES, ObjectStateError, TieredLocalStore

MAX_BODY = 5 * 1024**3


@dataclass
class Req:
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    owner: str


class S3Api:
    def __init__(
        self,
        *,
        store: TieredLocalStore,
        buckets: Buckets,
        lifecycle: LifecycleConfigs,
        secret_for: Callable[[str], str | None],
        owner_for: Callable[[str], str | None],
        now: Callable[[], datetime] | None = None,
        domain: str = "localhost",
        owner_check: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.buckets = buckets
        self.lifecycle = lifecycle
        self.secret_for = secret_for
        self.owner_for = owner_for
        self.now = now or (lambda: datetime.now(UTC))
        self.domain = domain
        self.bucket_owner_check = owner_check or buckets.bucket_owner_check
        self.multipart = Multipart(store.root)
        self.meta_root = store.root / ".objmeta"

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        rid = uuid.uuid4().hex[:16].upper()
        resource = scope.get("path", "")
        try:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise S3Error("EntityTooLarge", "the body exceeds 5 GiB; use a multipart upload", 400)
            response = await run_in_threadpool(self._handle, scope, bytes(body))
        except S3Error as exc:
            exc.resource = exc.resource or resource
            response = Response(exc.body(rid), exc.status, media_type="application/xml")
        except ObjectStateError as exc:
            err = S3Error("InvalidObjectState", exc.message, 403, resource)
            response = Response(err.body(rid), 403, media_type="application/xml")
        except Exception:  # a bug must not take the server down, nor leak details
            err = S3Error(
                "InternalError", "we encountered an internal error; please try again", 500, resource
            )
            response = Response(err.body(rid), 500, media_type="application/xml")
        response.headers["x-amz-request-id"] = rid
        await response(scope, receive, send)

    def _handle(self, scope: dict[str, Any], body: bytes) -> Response:
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
        mode = lower.get("x-amz-content-sha256", "")
        if mode.startswith("STREAMING-") or "aws-chunked" in lower.get("content-encoding", ""):
            body = auth.decode_chunked(body, verified, signed=mode == auth.STREAMING)
        bucket, key = self._address(lower.get("host", ""), unquote(raw_path))
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        req = Req(method, bucket, key, query, lower, body, owner)
        if not bucket:
            if method == "GET":
                return self.list_buckets(req)
            raise S3Error("MethodNotAllowed", "only GET is allowed on the service", 405)
        if not key:
            return self._bucket_op(req)
        return self._object_op(req)

    def _address(self, host: str, path: str) -> tuple[str, str]:
        name = host.rsplit(":", 1)[0].lower()
        suffix = "." + self.domain
        if self.domain and name.endswith(suffix) and name != self.domain:
            return name[: -len(suffix)], path.lstrip("/")  # virtual-host style
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    # --- buckets -------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        check_bucket_name(bucket)
        return self.store.root / bucket

    def _own(self, req: Req) -> None:
        if not self._bucket_dir(req.bucket).is_dir():
            raise S3Error("NoSuchBucket", "the specified bucket does not exist", 404, req.bucket)
        self.bucket_owner_check(req.owner, req.bucket)

    def list_buckets(self, req: Req) -> Response:
        found = []
        for name in self.store.buckets():
            try:
                check_bucket_name(name)
                self.bucket_owner_check(req.owner, name)
            except S3Error:
                continue
            when = self.buckets.created_at(name) or datetime.fromtimestamp(
                (self.store.root / name).stat().st_mtime, UTC
            )
            found.append(("Bucket", [("Name", name), ("CreationDate", iso(when))]))
        body = document(
            "ListAllMyBucketsResult",
            [("Owner", [("ID", req.owner), ("DisplayName", req.owner)]), ("Buckets", found)],
        )
        return _xml(body)

    def _bucket_op(self, req: Req) -> Response:
        q, m = req.query, req.method
        if m == "PUT" and not q:
            return self.create_bucket(req)
        self._own(req)
        if "lifecycle" in q:
            return self._lifecycle(req)
        if "uploads" in q and m == "GET":
            return self.list_uploads(req)
        if "location" in q and m == "GET":
            return _xml(document("LocationConstraint", []))
        if "delete" in q and m == "POST":
            return self.delete_objects(req)
        if m == "HEAD":
            return Response(status_code=200)
        if m == "GET":
            return self.list_objects(req)
        if m == "DELETE" and not q:
            return self.delete_bucket(req)
        raise S3Error("NotImplemented", f"{m} on a bucket with ?{'&'.join(q)} is not implemented", 501)

    def create_bucket(self, req: Req) -> Response:
        path = self._bucket_dir(req.bucket)
        owner = self.buckets.owner_of(req.bucket)
        if owner is None and path.is_dir():
            owner = "default"
        if owner is not None:
            code = "BucketAlreadyOwnedByYou" if owner == req.owner else "BucketAlreadyExists"
            raise S3Error(code, "the bucket already exists", 409, req.bucket)
        if not self.buckets.create(req.bucket, req.owner):
            raise S3Error("BucketAlreadyExists", "the bucket already exists", 409, req.bucket)
        path.mkdir(parents=True, exist_ok=True)
        return Response(status_code=200, headers={"Location": f"/{req.bucket}"})

    def delete_bucket(self, req: Req) -> Response:
        if next(iter(self.store.list(req.bucket, "")), None) is not None:
            raise S3Error("BucketNotEmpty", "the bucket you tried to delete is not empty", 409, req.bucket)
        path = self._bucket_dir(req.bucket)
        for d in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(d.iterdir()):
                d.rmdir()
        try:
            path.rmdir()
        except OSError:
            raise S3Error("BucketNotEmpty", "the bucket holds files S3 cannot list (hidden names)", 409)
        self.buckets.forget(req.bucket)
        self.lifecycle.delete(req.bucket)
        return Response(status_code=204)

    def list_objects(self, req: Req) -> Response:
        q = req.query
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        try:
            max_keys = min(int(q.get("max-keys", "1000")), 1000)
        except ValueError:
            raise S3Error("InvalidArgument", "max-keys must be an integer")
        token = q.get("continuation-token")
        after = q.get("start-after", "")
        if token:
            try:
                after = max(after, base64.urlsafe_b64decode(token.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise S3Error("InvalidArgument", "the continuation token is not valid")
        contents: list[tuple[str, Any]] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        for info in self.store.list(req.bucket, prefix):
            if info.key <= after:
                continue
            if delim:
                cut = info.key.find(delim, len(prefix))
                if cut >= 0:
                    cp = info.key[: cut + len(delim)]
                    if prefixes and prefixes[-1] == cp:
                        continue
                    if cp <= after:
                        continue
                    if len(contents) + len(prefixes) >= max_keys:
                        truncated = True
                        break
                    prefixes.append(cp)
                    last = info.key[:cut] + delim + "\U0010ffff"
                    continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            etag = self._meta(req.bucket, info.key, info.size).get("etag") or weak_etag(
                info.size, info.modified
            )
            contents.append(
                (
                    "Contents",
                    [
                        ("Key", info.key),
                        ("LastModified", iso(info.modified)),
                        ("ETag", f'"{etag}"'),
                        ("Size", info.size),
                        ("StorageClass", info.storage_class),
                    ],
                )
            )
            last = info.key
        fill: list[tuple[str, Any]] = [
            ("Name", req.bucket),
            ("Prefix", prefix),
            ("KeyCount", len(contents) + len(prefixes)),
            ("MaxKeys", max_keys),
            ("Delimiter", delim or None),
            ("IsTruncated", truncated),
            ("ContinuationToken", token),
            (
                "NextContinuationToken",
                base64.urlsafe_b64encode(last.encode()).decode() if truncated else None,
            ),
            ("StartAfter", q.get("start-after")),
            *contents,
            *[("CommonPrefixes", [("Prefix", p)]) for p in prefixes],
        ]
        return _xml(document("ListBucketResult", fill))

    def delete_objects(self, req: Req) -> Response:
        root = parse(req.body, "Delete")
        quiet = (text(root, "Quiet") or "").lower() == "true"
        done: list[tuple[str, Any]] = []
        objs = children(root, "Object")
        if len(objs) > 1000:
            raise S3Error("MalformedXML", "at most 1000 keys per DeleteObjects request")
        for obj in objs:
            key = text(obj, "Key") or ""
            try:
                self.store.delete(req.bucket, key)
                self._drop_meta(req.bucket, key)
                if not quiet:
                    done.append(("Deleted", [("Key", key)]))
            except StorageError as exc:
                done.append(("Error", [("Key", key), ("Code", "InternalError"), ("Message", exc.message)]))
        return _xml(document("DeleteResult", done))

    def _lifecycle(self, req: Req) -> Response:
        if req.method == "GET":
            cfg = self.lifecycle.get(req.bucket)
            if cfg is None:
                raise S3Error(
                    "NoSuchLifecycleConfiguration", "the lifecycle configuration does not exist", 404
                )
            return _xml(
                to_xml(cfg),
                {"x-amz-transition-default-minimum-object-size": cfg.transition_default_minimum_object_size},
            )
        if req.method == "PUT":
            try:
                cfg = parse_xml(
                    req.body,
                    minimum_object_size=req.headers.get("x-amz-transition-default-minimum-object-size"),
                )
            except LifecycleError as exc:
                raise S3Error(exc.code, exc.detail, 400)
            self.lifecycle.put(req.bucket, cfg)
            return Response(
                status_code=200,
                headers={
                    "x-amz-transition-default-minimum-object-size": cfg.transition_default_minimum_object_size
                },
            )
        if req.method == "DELETE":
            self.lifecycle.delete(req.bucket)
            return Response(status_code=204)
        raise S3Error("MethodNotAllowed", "lifecycle takes GET, PUT or DELETE", 405)

    def list_uploads(self, req: Req) -> Response:
        ups = [
            (
                "Upload",
                [
                    ("Key", u.key),
                    ("UploadId", u.upload_id),
                    ("Initiated", iso(u.initiated)),
                    ("StorageClass", u.storage_class),
                ],
            )
            for u in self.multipart.list(req.bucket)
            if u.key.startswith(req.query.get("prefix", ""))
        ]
        return _xml(
            document("ListMultipartUploadsResult", [("Bucket", req.bucket), ("IsTruncated", False), *ups])
        )

    # --- objects -------------------------------------------------------------------------------

    def _object_op(self, req: Req) -> Response:
        self._own(req)
        q, m = req.query, req.method
        if "uploadId" in q:
            return self._multipart(req)
        if "uploads" in q and m == "POST":
            sc = self._class(req)
            up = self.multipart.create(req.bucket, req.key, req.owner, sc, req.headers.get("content-type"))
            return _xml(
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
        given = req.headers.get("content-md5")
        if given is not None and base64.b64encode(md5.digest()).decode() != given.strip():
            raise S3Error("BadDigest", "the Content-MD5 you specified did not match what we received")
        self.store.put(req.bucket, req.key, req.body, storage_class=sc)
        etag = md5.hexdigest()
        self._write_meta(req, etag, len(req.body))
        return Response(status_code=200, headers={"ETag": f'"{etag}"'})

    def copy_object(self, req: Req) -> Response:
        self._check_key(req.key)
        src = unquote(req.headers["x-amz-copy-source"]).lstrip("/").split("?", 1)[0]
        sbucket, _, skey = src.partition("/")
        self._own(Req("GET", sbucket, skey, {}, {}, b"", req.owner))
        try:
            data = self.store.get(sbucket, skey)
        except NotFoundError:
            raise S3Error("NoSuchKey", "the specified key does not exist", 404, f"/{sbucket}/{skey}")
        sc = self._class(req)
        self.store.put(req.bucket, req.key, data, storage_class=sc)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        old = self._meta(sbucket, skey, len(data))
        if req.headers.get("x-amz-metadata-directive", "COPY") == "COPY" and old:
            req = Req(req.method, req.bucket, req.key, req.query,
                      {**req.headers, **{f"x-amz-meta-{k}": v for k, v in old.get("metadata", {}).items()},
                       "content-type": old.get("content_type") or ""}, b"", req.owner)  # fmt: skip
        self._write_meta(req, etag, len(data))
        return _xml(document("CopyObjectResult", [("LastModified", iso(self.now())), ("ETag", f'"{etag}"')]))

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

    def _multipart(self, req: Req) -> Response:
        up = self.multipart.get(req.bucket, req.query["uploadId"], req.key)
        if up.owner != req.owner:
            raise S3Error("AccessDenied", "Access Denied", 403)
        m = req.method
        if m == "PUT" and "partNumber" in req.query:
            try:
                n = int(req.query["partNumber"])
            except ValueError:
                raise S3Error("InvalidArgument", "partNumber must be an integer")
            etag = self.multipart.put_part(up, n, req.body)
            return Response(status_code=200, headers={"ETag": f'"{etag}"'})
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
            return _xml(document("ListPartsResult", fill))
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
            tmp, etag = self.multipart.assemble(up, wanted, self.store.root / ".multipart" / req.bucket)
            try:
                self.store.put(req.bucket, req.key, tmp, storage_class=up.storage_class)
            finally:
                tmp.unlink(missing_ok=True)
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
            return _xml(document("CompleteMultipartUploadResult", fill))
        raise S3Error("MethodNotAllowed", f"{m} is not allowed with uploadId", 405)

    # --- object metadata (ETag, Content-Type, x-amz-meta-*) ------------------------------------

    def _meta_path(self, bucket: str, key: str) -> Path:
        return self.meta_root / bucket / (key + ".json")

    def _write_meta(self, req: Req, etag: str, size: int) -> None:
        user = {k[len("x-amz-meta-") :]: v for k, v in req.headers.items() if k.startswith("x-amz-meta-")}
        path = self._meta_path(req.bucket, req.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        data = {
            "etag": etag,
            "size": size,
            "content_type": req.headers.get("content-type") or None,
            "metadata": user,
        }
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def _meta(self, bucket: str, key: str, size: int) -> dict[str, Any]:
        """The sidecar, when it still describes the object (a pipeline may have rewritten it)."""
        try:
            data = json.loads(self._meta_path(bucket, key).read_text())
        except (OSError, ValueError):
            return {}
        return data if data.get("size") == size else {}

    def _drop_meta(self, bucket: str, key: str) -> None:
        self._meta_path(bucket, key).unlink(missing_ok=True)


def _chunks(fh: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """length bytes of fh from start, in 1 MiB pieces; closes fh."""
    try:
        fh.seek(start)
        while length > 0 and (piece := fh.read(min(length, 1 << 20))):
            length -= len(piece)
            yield piece
    finally:
        fh.close()


def _xml(body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, 200, media_type="application/xml", headers=headers)
