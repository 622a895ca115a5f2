"""Object store on any S3 endpoint through boto3 (AWS, MinIO, moto's server...)."""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tailrace.errors import NotFoundError, StorageError
from tailrace.storage.abc import ObjectInfo, ObjectStore
from tailrace.storage.local import is_hidden


class S3Store(ObjectStore):
    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=Config(
                    retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}
                ),
            )
        self.client = client
        self.endpoint_url = endpoint_url

    def _fail(self, op: str, bucket: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"S3 {op} s3://{bucket}/{key} at {self.endpoint_url or 'AWS'} failed: {exc}")

    @staticmethod
    def _missing(exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket")

    def get(self, bucket: str, key: str) -> bytes:
        with self.open_read(bucket, key) as fh:
            return fh.read()

    def open_read(self, bucket: str, key: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            return io.BytesIO(body.read())
        except Exception as exc:
            if self._missing(exc):
                raise NotFoundError(f"no such object: s3://{bucket}/{key}")
            raise self._fail("GET", bucket, key, exc)

    def read_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            found = self.client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            return bytes(found["Body"].read())
        except Exception as exc:
            if self._missing(exc):
                raise NotFoundError(f"no such object: s3://{bucket}/{key}")
            if "InvalidRange" in str(exc):  # offset at or past the end
                return b""
            raise self._fail("GET", bucket, key, exc)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            self.client.download_file(bucket, key, str(tmp))
            tmp.replace(dest)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            if self._missing(exc):
                raise NotFoundError(f"no such object: s3://{bucket}/{key}")
            raise self._fail("GET", bucket, key, exc)

    def commit_directory(self, bucket: str, prefix: str, staged: Path) -> None:
        """Upload the new files under a hidden temporary prefix, copy them into place, then
        delete the old keys. A failed upload leaves the old objects untouched; readers can see a
        mix only during the server-side copies (S3 has no directory rename)."""
        prefix = prefix.rstrip("/") + "/"
        tmp = f"{prefix}_tailrace_tmp_{uuid.uuid4().hex[:12]}/"
        files = sorted(p for p in staged.rglob("*") if p.is_file())
        old = {info.key for info in self.list(bucket, prefix)}
        uploaded: list[str] = []
        try:
            for path in files:
                key = tmp + path.relative_to(staged).as_posix()
                self.put(bucket, key, path)
                uploaded.append(key)
            new: set[str] = set()
            for key in uploaded:
                final = prefix + key[len(tmp) :]
                try:
                    self.client.copy_object(
                        Bucket=bucket, Key=final, CopySource={"Bucket": bucket, "Key": key}
                    )
                except Exception as exc:
                    raise self._fail("COPY", bucket, final, exc)
                new.add(final)
            for key in sorted(old - new):
                self.delete(bucket, key)
        finally:
            for key in uploaded:
                self.delete(bucket, key)
        shutil.rmtree(staged, ignore_errors=True)

    def put(self, bucket: str, key: str, data: bytes | BinaryIO | Path) -> None:
        try:
            if isinstance(data, Path):
                self.client.upload_file(str(data), bucket, key)
            elif isinstance(data, bytes | bytearray | memoryview):
                self.client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
            else:
                self.client.upload_fileobj(data, bucket, key)
        except Exception as exc:
            if self._missing(exc):
                try:
                    self.client.create_bucket(Bucket=bucket)
                except Exception as exc2:
                    raise self._fail("CreateBucket", bucket, key, exc2)
                return self.put(bucket, key, data)
            raise self._fail("PUT", bucket, key, exc)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            meta = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if self._missing(exc):
                return None
            raise self._fail("HEAD", bucket, key, exc)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(meta.get("ContentLength", 0)),
            modified=meta["LastModified"],
            storage_class=meta.get("StorageClass", "STANDARD"),
        )

    def unreadable_class(self, info: ObjectInfo) -> str | None:
        """S3 refuses GETs of GLACIER and DEEP_ARCHIVE objects until a restore has completed:
        HeadObject's Restore header then says ongoing-request="false"."""
        if info.storage_class not in ("GLACIER", "DEEP_ARCHIVE"):
            return None
        try:
            meta = self.client.head_object(Bucket=info.bucket, Key=info.key)
        except Exception as exc:
            raise self._fail("HEAD", info.bucket, info.key, exc)
        return None if 'ongoing-request="false"' in str(meta.get("Restore", "")) else info.storage_class

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if any(is_hidden(part) for part in key[len(prefix) :].split("/") if part):
                        continue
                    yield ObjectInfo(
                        bucket=bucket,
                        key=key,
                        size=int(item["Size"]),
                        modified=item["LastModified"],
                        storage_class=item.get("StorageClass", "STANDARD"),
                    )
        except Exception as exc:
            if self._missing(exc):
                return
            raise self._fail("LIST", bucket, prefix, exc)

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if not self._missing(exc):
                raise self._fail("DELETE", bucket, key, exc)
