"""The ObjectStore contract, run on every backend: LocalStore, and S3Store against moto's server."""

from __future__ import annotations

import io

import pytest

from tailrace.errors import NotFoundError, StorageError


def test_put_get_head_and_overwrite(store_and_bucket, tmp_path):
    store, bucket = store_and_bucket
    store.put(bucket, "a/b.txt", b"one")
    assert store.get(bucket, "a/b.txt") == b"one"
    info = store.head(bucket, "a/b.txt")
    assert info is not None and (info.key, info.size, info.bucket) == ("a/b.txt", 3, bucket)
    store.put(bucket, "a/b.txt", io.BytesIO(b"two!"))
    assert store.get(bucket, "a/b.txt") == b"two!"
    src = tmp_path / "file.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    store.put(bucket, "a/c.bin", src)
    with store.open_read(bucket, "a/c.bin") as fh:
        assert fh.read() == src.read_bytes()


def test_missing_objects(store_and_bucket, tmp_path):
    store, bucket = store_and_bucket
    assert store.head(bucket, "nope") is None
    with pytest.raises(NotFoundError):
        store.get(bucket, "nope")
    with pytest.raises(NotFoundError):
        store.download(bucket, "nope", tmp_path / "x")
    store.delete(bucket, "nope")  # not an error
    assert list(store.list(bucket, "nothing/")) == []


def test_list_is_recursive_sorted_and_skips_hidden(store_and_bucket):
    store, bucket = store_and_bucket
    for key in [
        "logs/d/2.gz",
        "logs/d/1.gz",
        "logs/d/_SUCCESS",
        "logs/d/.tmp",
        "logs/e/x",
        "logsx/y",
        "other",
    ]:
        store.put(bucket, key, b"x")
    assert [i.key for i in store.list(bucket, "logs/")] == ["logs/d/1.gz", "logs/d/2.gz", "logs/e/x"]
    assert [i.key for i in store.list(bucket, "logs/d/")] == ["logs/d/1.gz", "logs/d/2.gz"]


def test_delete(store_and_bucket):
    store, bucket = store_and_bucket
    store.put(bucket, "k", b"v")
    store.delete(bucket, "k")
    assert store.head(bucket, "k") is None


def test_download_writes_the_whole_object(store_and_bucket, tmp_path):
    store, bucket = store_and_bucket
    data = bytes(range(256)) * 5000
    store.put(bucket, "big/obj", data)
    dest = tmp_path / "dl" / "obj"
    dest.parent.mkdir()
    store.download(bucket, "big/obj", dest)
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["obj"]


def test_commit_directory_replaces_everything_under_the_prefix(store_and_bucket, tmp_path):
    store, bucket = store_and_bucket
    store.put(bucket, "out/000000_0", b"old")
    store.put(bucket, "out/000001_0", b"old2")
    store.put(bucket, "outside", b"keep")
    staged = tmp_path / "staged"
    (staged / "sub").mkdir(parents=True)
    (staged / "000000_0").write_bytes(b"new")
    (staged / "sub" / "f").write_bytes(b"nested")
    store.commit_directory(bucket, "out", staged)
    assert {i.key: store.get(bucket, i.key) for i in store.list(bucket, "out/")} == {
        "out/000000_0": b"new",
        "out/sub/f": b"nested",
    }
    assert store.get(bucket, "outside") == b"keep"
    assert [i.key for i in store.list(bucket, "")] == ["out/000000_0", "out/sub/f", "outside"]


def test_commit_directory_into_a_new_prefix(store_and_bucket, tmp_path):
    store, bucket = store_and_bucket
    staged = tmp_path / "s"
    staged.mkdir()
    (staged / "000000_0").write_bytes(b"x")
    store.commit_directory(bucket, "fresh/dir", staged)
    assert store.get(bucket, "fresh/dir/000000_0") == b"x"


def test_local_keys_may_not_escape_the_root(tmp_path):
    from tailrace.storage.local import LocalStore

    with pytest.raises(StorageError):
        LocalStore(tmp_path).put("b", "../../etc/x", b"no")
