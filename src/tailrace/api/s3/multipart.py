"""Multipart uploads kept under `<root>/.multipart/<bucket>/<upload id>/` until completed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from tailrace.api.s3.xml import S3Error

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    owner: str
    initiated: datetime
    storage_class: str
    content_type: str | None


class Multipart:
    def __init__(self, root: Path) -> None:
        self.root = root / ".multipart"

    def _dir(self, bucket: str, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise S3Error("NoSuchUpload", "the specified upload does not exist", 404, upload_id)
        return self.root / bucket / upload_id

    def create(
        self, bucket: str, key: str, owner: str, storage_class: str, content_type: str | None
    ) -> Upload:
        up = Upload(uuid.uuid4().hex, bucket, key, owner, datetime.now(UTC), storage_class, content_type)
        d = self._dir(bucket, up.upload_id)
        d.mkdir(parents=True)
        meta = {
            "key": key,
            "owner": owner,
            "initiated": up.initiated.isoformat(),
            "storage_class": storage_class,
            "content_type": content_type,
        }
        (d / "upload.json").write_text(json.dumps(meta))
        return up

    def get(self, bucket: str, upload_id: str, key: str | None = None) -> Upload:
        d = self._dir(bucket, upload_id)
        try:
            meta = json.loads((d / "upload.json").read_text())
        except (OSError, ValueError):
            raise S3Error("NoSuchUpload", "the specified upload does not exist", 404, upload_id)
        if key is not None and meta["key"] != key:
            raise S3Error("NoSuchUpload", "the upload belongs to another key", 404, upload_id)
        return Upload(
            upload_id,
            bucket,
            meta["key"],
            meta["owner"],
            datetime.fromisoformat(meta["initiated"]),
            meta["storage_class"],
            meta.get("content_type"),
        )

    def put_part(self, up: Upload, number: int, data: bytes) -> str:
        out, tmp = self.stage_part(up, number)
        with out:
            out.write(data)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.commit_part(up, number, tmp, etag)
        return etag

    def stage_part(self, up: Upload, number: int) -> tuple[BinaryIO, Path]:
        """A hidden file in the upload's directory for a part's body (streamed or not)."""
        if not 1 <= number <= MAX_PARTS:
            raise S3Error("InvalidArgument", f"partNumber must be 1-{MAX_PARTS}", 400)
        d = self._dir(up.bucket, up.upload_id)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".part.")
        return os.fdopen(fd, "wb"), Path(tmp)

    def commit_part(self, up: Upload, number: int, staged: Path, etag: str) -> None:
        d = self._dir(up.bucket, up.upload_id)
        os.replace(staged, d / f"part-{number:05d}")
        (d / f"part-{number:05d}.etag").write_text(etag)

    def parts(self, up: Upload) -> list[tuple[int, str, int, datetime]]:
        d = self._dir(up.bucket, up.upload_id)
        out = []
        for p in sorted(d.glob("part-?????")):
            st = p.stat()
            etag = (d / f"{p.name}.etag").read_text()
            out.append((int(p.name[5:]), etag, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
        return out

    def assemble(self, up: Upload, wanted: list[tuple[int, str]], out: BinaryIO) -> str:
        """Concatenate the listed parts into `out`; returns the multipart ETag."""
        have = {n: (etag, size) for n, etag, size, _ in self.parts(up)}
        if not wanted:
            raise S3Error("MalformedXML", "CompleteMultipartUpload lists no parts")
        numbers = [n for n, _ in wanted]
        if numbers != sorted(set(numbers)):
            raise S3Error("InvalidPartOrder", "parts must be listed in ascending order, each once")
        for i, (n, etag) in enumerate(wanted):
            if n not in have or have[n][0] != etag.strip('"'):
                raise S3Error("InvalidPart", f"part {n} was not uploaded or its ETag does not match")
            if i < len(wanted) - 1 and have[n][1] < MIN_PART:
                raise S3Error("EntityTooSmall", f"part {n} is smaller than 5 MiB and is not the last part")
        d = self._dir(up.bucket, up.upload_id)
        digest = hashlib.md5(usedforsecurity=False)
        for n, etag in wanted:
            digest.update(bytes.fromhex(etag.strip('"')))
            with (d / f"part-{n:05d}").open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        return f"{digest.hexdigest()}-{len(wanted)}"

    def abort(self, up: Upload) -> None:
        shutil.rmtree(self._dir(up.bucket, up.upload_id), ignore_errors=True)

    def list(self, bucket: str) -> list[Upload]:
        base = self.root / bucket
        if not base.is_dir():
            return []
        ups = []
        for d in sorted(base.iterdir()):
            try:
                ups.append(self.get(bucket, d.name))
            except S3Error:
                continue
        return sorted(ups, key=lambda u: (u.key, u.initiated))
