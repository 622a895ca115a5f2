"""Unchanged S3 clients against the endpoint: `aws s3 sync` both ways, a 1 GiB multipart upload
through boto3's transfer manager, concurrent writers with readers that must never see half an
object, and polars (Rust's object_store) reading CSV through s3:// URLs.

DuckDB's httpfs would be the other reader, but it cannot be loaded offline (INSTALL downloads it),
so polars stands in for "another S3 reader"."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from boto3.s3.transfer import TransferConfig

from .s3_helpers import World, s3

MiB = 1 << 20


def aws_s3(world: World) -> Callable[..., str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": world.alice.access_key_id,
        "AWS_SECRET_ACCESS_KEY": world.alice.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    exe = [str(Path(sys.executable).with_name("aws")), "--endpoint-url", world.url, "s3"]

    def run(*args: str) -> str:
        out = subprocess.run([*exe, *args], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout

    return run


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_aws_s3_sync_up_and_down(world: World, tmp_path: Path) -> None:
    s3(world, world.alice).create_bucket(Bucket="sync-logs")
    run = aws_s3(world)
    local = tmp_path / "local"
    rnd = random.Random(7)
    for day in ("20260301", "20260302"):
        for h in range(4):
            path = local / "logs" / day / f"host-{h:02d}_1.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rnd.randbytes(1000 + 97 * h))
    (local / "big.bin").write_bytes(rnd.randbytes(9 * MiB))  # multipart inside sync
    # Logs are older than their upload. Written in the second of the upload, a file's sub-second
    # mtime can be later than LastModified (whole seconds, as S3's), and sync would copy it again.
    old = time.time() - 60
    for p in local.rglob("*"):
        os.utime(p, (old, old))

    run("sync", str(local), "s3://sync-logs/")
    assert {i.key for i in world.store.list("sync-logs", "")} == set(tree(local))
    assert world.store.get("sync-logs", "big.bin") == (local / "big.bin").read_bytes()
    # Nothing changed: the second sync compares sizes and times from ListObjectsV2 and copies nothing.
    assert run("sync", str(local), "s3://sync-logs/").strip() == ""

    # A changed file, a new one and a removed one: sync --delete mirrors exactly those.
    (local / "logs/20260301/host-00_1.gz").write_bytes(b"changed, and of another size")
    (local / "logs/20260303").mkdir()
    (local / "logs/20260303/host-00_1.gz").write_bytes(b"new day")
    (local / "logs/20260302/host-03_1.gz").unlink()
    out = run("sync", "--delete", str(local), "s3://sync-logs/")
    assert out.count("upload:") == 2 and out.count("delete:") == 1, out
    assert world.store.head("sync-logs", "logs/20260302/host-03_1.gz") is None

    down = tmp_path / "down"
    run("sync", "s3://sync-logs/", str(down))
    assert tree(down) == tree(local)
    assert run("sync", "s3://sync-logs/", str(down)).strip() == ""
    # A prefix down, written by a pipeline directly into the store: the same objects.
    world.store.put("sync-logs", "logs/20260303/host-01_1.gz", b"from a pipeline")
    run("sync", "s3://sync-logs/logs/20260303/", str(tmp_path / "day3"))
    assert tree(tmp_path / "day3") == {"host-00_1.gz": b"new day", "host-01_1.gz": b"from a pipeline"}


def _write_gib(path: Path) -> str:
    """1 GiB of data that differs in every MiB (a counter ahead of a random block), streamed to
    disk; returns its SHA-256."""
    block = random.Random(1).randbytes(MiB - 8)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(1024):
            chunk = i.to_bytes(8, "big") + block
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_multipart_upload_of_one_gib(world: World, tmp_path: Path) -> None:
    src = tmp_path / "one.gib"
    sha = _write_gib(src)
    part = 64 * MiB
    c = s3(world, world.alice)
    c.create_bucket(Bucket="gib")
    cfg = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
    c.upload_file(str(src), "gib", "raw/one.gib", Config=cfg)

    head = c.head_object(Bucket="gib", Key="raw/one.gib")
    assert head["ContentLength"] == 1 << 30
    # S3's multipart ETag: MD5 of the parts' MD5s, then "-<parts>".
    md5s = b""
    with src.open("rb") as fh:
        while chunk := fh.read(part):
            md5s += hashlib.md5(chunk).digest()
    assert head["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-16"'
    stored = world.store.local_path("gib", "raw/one.gib")
    digest = hashlib.sha256()
    with stored.open("rb") as fh:
        while chunk := fh.read(8 * MiB):
            digest.update(chunk)
    assert digest.hexdigest() == sha
    # Part boundaries, read back through the API with Range.
    edge = c.get_object(Bucket="gib", Key="raw/one.gib", Range=f"bytes={part - 4}-{part + 11}")["Body"].read()
    with src.open("rb") as fh:
        fh.seek(part - 4)
        assert edge == fh.read(16)
    assert c.list_multipart_uploads(Bucket="gib").get("Uploads", []) == []
    assert not any((world.store.root / ".multipart").rglob("*.part*"))


def _body(writer: int, n: int) -> bytes:
    """A body that proves itself whole: its header names the writer and round, and the rest is
    derived from them, with a size that varies from 1 byte to 600 KiB."""
    size = random.Random(writer * 1000 + n).randrange(1, 600 * 1024)
    head = f"{writer:04d}:{n:06d}:{size:09d}|".encode()
    fill = hashlib.sha256(head).digest() * (size // 32 + 1)
    return head + fill[:size]


def _whole(body: bytes) -> bool:
    try:
        writer, n, _size = (int(x) for x in body[:21].decode().split(":"))
    except ValueError:
        return False
    return body == _body(writer, n)


def test_concurrent_writers_and_readers(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="busy")
    c.put_object(Bucket="busy", Key="shared", Body=_body(0, 0))
    writers, rounds = 8, 12
    errors: list[str] = []
    stop = threading.Event()
    reads = [0]

    def write(w: int) -> None:
        cw = s3(world, world.alice)
        try:
            for n in range(1, rounds + 1):
                cw.put_object(Bucket="busy", Key="shared", Body=_body(w, n))
                cw.put_object(Bucket="busy", Key=f"own/{w}/{n}", Body=_body(w, n))
        except Exception as exc:  # reported below, with the thread that met it
            errors.append(f"writer {w}: {exc!r}")

    def read() -> None:
        cr = s3(world, world.alice)
        while not stop.is_set():
            try:
                body = cr.get_object(Bucket="busy", Key="shared")["Body"].read()
            except Exception as exc:
                errors.append(f"reader: {exc!r}")
                return
            reads[0] += 1
            if not _whole(body):
                errors.append(f"reader saw a partial or mixed object of {len(body)} bytes")

    readers = [threading.Thread(target=read) for _ in range(3)]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(1, writers + 1)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join(300)
    stop.set()
    for t in readers:
        t.join(60)
    assert errors == []
    assert reads[0] > 0
    last = c.get_object(Bucket="busy", Key="shared")["Body"].read()
    assert _whole(last) and int(last[5:11]) == rounds  # the final PUT of one of the writers
    listing = c.get_paginator("list_objects_v2").paginate(Bucket="busy", Prefix="own/")
    keys = {o["Key"] for page in listing for o in page.get("Contents", [])}
    assert keys == {f"own/{w}/{n}" for w in range(1, writers + 1) for n in range(1, rounds + 1)}
    for w in range(1, writers + 1):
        assert world.store.get("busy", f"own/{w}/{rounds}") == _body(w, rounds)
    # No temporary file is left beside the objects.
    assert not [p for p in (world.store.root / "busy").rglob(".*") if p.is_file()]


def test_polars_reads_csv_through_the_endpoint(world: World) -> None:
    c = s3(world, world.alice)
    c.create_bucket(Bucket="frames")
    c.put_object(Bucket="frames", Key="stats/2026-03-01.csv", Body=b"path,hits\n/a,3\n/b,5\n")
    c.put_object(Bucket="frames", Key="stats/2026-03-02.csv", Body=b"path,hits\n/a,7\n")
    options = {
        "aws_endpoint_url": world.url,
        "aws_access_key_id": world.alice.access_key_id,
        "aws_secret_access_key": world.alice.secret_access_key,
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    one = pl.read_csv("s3://frames/stats/2026-03-01.csv", storage_options=options)
    assert one.to_dicts() == [{"path": "/a", "hits": 3}, {"path": "/b", "hits": 5}]
    # A glob lists the prefix (ListObjectsV2) and reads each object (ranged GETs).
    both = pl.scan_csv("s3://frames/stats/*.csv", storage_options=options).collect()
    assert sorted(both.rows()) == [("/a", 3), ("/a", 7), ("/b", 5)]
    # Another owner's key is refused: polars reports the endpoint's AccessDenied.
    theirs = {**options, "aws_access_key_id": world.bob.access_key_id,
              "aws_secret_access_key": world.bob.secret_access_key}  # fmt: skip
    with pytest.raises(Exception, match=r"(?i)denied|403"):
        pl.read_csv("s3://frames/stats/2026-03-01.csv", storage_options=theirs)
