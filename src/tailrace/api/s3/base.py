"""What every S3 operation shares: the request, the API's parts, and the object metadata
sidecar (ETag, Content-Type, x-amz-meta-*) kept beside the store."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.responses import Response

from tailrace.api.s3.buckets import Buckets
from tailrace.api.s3.multipart import Multipart
from tailrace.lifecycle.configs import LifecycleConfigs
from tailrace.storage.tiered import TieredLocalStore


@dataclass
class Req:
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    owner: str
    verified: Any = None
    """The signature's auth.Verified (chunk signatures of an aws-chunked body chain from it)."""


class S3Base:
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

    # --- object metadata (ETag, Content-Type, x-amz-meta-*) ------------------------------------

    def _meta_path(self, bucket: str, key: str) -> Path:
        return self.meta_root / bucket / (key + ".json")

    def _write_meta(self, req: Req, etag: str, size: int) -> None:
        """Replace the sidecar by rename (readers see the old one or the new one). Not synced:
        it is derived (a sidecar that does not match the object's size is ignored)."""
        user = {k[len("x-amz-meta-") :]: v for k, v in req.headers.items() if k.startswith("x-amz-meta-")}
        data = {
            "etag": etag,
            "size": size,
            "content_type": req.headers.get("content-type") or None,
            "metadata": user,
        }
        path = f"{os.fspath(self.meta_root)}/{req.bucket}/{req.key}.json"  # as _meta_path, without pathlib
        folder, name = os.path.split(path)
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # the first object under this prefix
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, json.dumps(data).encode())
        finally:
            os.close(fd)
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


def xml_response(body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, 200, media_type="application/xml", headers=headers)
