"""The Storage facade: URI resolution, directory reads with gzip, atomic directory commits."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from tailrace.errors import NotFoundError, StorageError
from tailrace.storage import Storage


def test_s3_uris_map_to_the_embedded_directory(tmp_path):
    storage = Storage(home=tmp_path)
    storage.write_bytes("s3://bucket/logs/20121221/a.gz", b"x")
    assert (tmp_path / "s3" / "bucket" / "logs" / "20121221" / "a.gz").read_bytes() == b"x"
    assert storage.read_bytes("s3n://bucket/logs/20121221/a.gz") == b"x"
    assert storage.exists("s3://bucket/logs/20121221")
    assert not storage.exists("s3://bucket/logs/20121222")
    assert storage.resolve("s3://bucket/logs/x").local_path == tmp_path / "s3" / "bucket" / "logs" / "x"


def test_file_uris_and_plain_paths(tmp_path, monkeypatch):
    storage = Storage(home=tmp_path / "home")
    target = tmp_path / "data" / "f.txt"
    storage.write_bytes(f"file://{target}", b"1")
    assert storage.read_bytes(str(target)) == b"1"
    monkeypatch.chdir(tmp_path)
    assert storage.read_bytes("data/f.txt") == b"1"


@pytest.mark.parametrize("uri", ["", "s3:///nokey", "ftp://host/x"])
def test_bad_uris_are_refused(tmp_path, uri):
    with pytest.raises(StorageError):
        Storage(home=tmp_path).resolve(uri)


def test_reading_a_directory_reads_every_file_and_decompresses_gz(tmp_path):
    storage = Storage(home=tmp_path)
    folder = tmp_path / "s3" / "b" / "logs"
    folder.mkdir(parents=True)
    with gzip.open(folder / "a_0.gz", "wb") as fh:
        fh.write(b"one\ntwo\n")
    (folder / "b_0").write_bytes(b"three\n")
    (folder / "_SUCCESS").write_bytes(b"")
    assert list(storage.iter_lines("s3://b/logs")) == [b"one\n", b"two\n", b"three\n"]
    assert [i.key for i in storage.list_files("s3://b/logs/")] == ["logs/a_0.gz", "logs/b_0"]
    with pytest.raises(NotFoundError):
        list(storage.iter_lines("s3://b/missing"))


def test_commit_directory_is_atomic_for_readers(tmp_path):
    storage = Storage(home=tmp_path)
    out = tmp_path / "s3" / "b" / "table"
    out.mkdir(parents=True)
    for name in ("000000_0", "000001_0"):
        (out / name).write_text("old\n")
    seen: set[tuple[str, ...]] = set()
    stop = threading.Event()

    def reader() -> None:
        # Read one snapshot through a directory handle, as a reader that opened the table would.
        while not stop.is_set():
            try:
                fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                seen.add(("missing",))
                continue
            try:
                snap = []
                for name in sorted(os.listdir(fd)):
                    with open(os.open(name, os.O_RDONLY, dir_fd=fd)) as fh:
                        snap.append(fh.read())
                seen.add(tuple(snap))
            except FileNotFoundError:
                pass  # the old snapshot was cleaned up after the swap: the reader retries
            finally:
                os.close(fd)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            staged = tmp_path / f"stage{i}"
            staged.mkdir()
            for name in ("000000_0", "000001_0"):
                (staged / name).write_text(f"v{i}\n")
            storage.commit_directory("s3://b/table", staged)
    finally:
        stop.set()
        thread.join()
    assert seen and all(len(snap) == 2 and len(set(snap)) == 1 for snap in seen), seen  # never a mix
    assert ("missing",) not in seen
    assert sorted(p.name for p in out.iterdir()) == ["000000_0", "000001_0"]
    hidden = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    assert all(".table.old-" in name for name in hidden)  # replaced copies, kept for slow readers


def test_replaced_directories_are_swept_after_the_grace_period(tmp_path, monkeypatch):
    import tailrace.storage.local as local

    storage = Storage(home=tmp_path)
    for i in range(3):
        staged = tmp_path / f"stage{i}"
        staged.mkdir()
        (staged / "000000_0").write_text(f"v{i}")
        storage.commit_directory("s3://b/t", staged)
    parent = tmp_path / "s3" / "b"
    assert len([p for p in parent.iterdir() if p.name.startswith(".t.old-")]) == 2
    monkeypatch.setattr(local, "OLD_GRACE_SECONDS", 0.0)
    staged = tmp_path / "stage-last"
    staged.mkdir()
    (staged / "000000_0").write_text("last")
    storage.commit_directory("s3://b/t", staged)
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []
    assert (parent / "t" / "000000_0").read_text() == "last"


def test_s3_endpoint_storage_reads_and_commits(s3_store, tmp_path):
    storage = Storage(home=tmp_path, s3=s3_store)
    s3_store.client.create_bucket(Bucket="logs")
    storage.write_bytes("s3://logs/in/a.gz", gzip.compress(b"x\ny\n"))
    assert list(storage.iter_lines("s3://logs/in/")) == [b"x\n", b"y\n"]
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "000000_0").write_bytes(b"result\n")
    storage.commit_directory("s3://logs/out", staged)
    assert storage.read_bytes("s3://logs/out/000000_0") == b"result\n"
    keys = [o["Key"] for o in s3_store.client.list_objects_v2(Bucket="logs")["Contents"]]
    assert keys == ["in/a.gz", "out/000000_0"]  # the temporary upload prefix is gone
    assert not Path(staged).exists()
