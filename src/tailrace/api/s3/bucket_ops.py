"""S3's bucket operations: ListBuckets, Create/Delete/HeadBucket, ListObjectsV2, DeleteObjects,
the bucket lifecycle configuration and ListMultipartUploads."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.responses import Response

from tailrace.api.s3.base import Req, S3Base
from tailrace.api.s3.base import xml_response as _xml
from tailrace.api.s3.buckets import check_bucket_name
from tailrace.api.s3.objects import weak_etag
from tailrace.api.s3.xml import S3Error, children, document, iso, parse, text
from tailrace.errors import StorageError
from tailrace.lifecycle.rules import LifecycleError
from tailrace.lifecycle.wire import parse_xml, to_xml


class BucketOps(S3Base):
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
