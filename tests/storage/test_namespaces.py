"""Keys validated in one place, buckets owned by owners, local paths only where allowed: the
owner's view of the store, on the embedded directory and on S3 (moto over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailrace.state.engine import create_engine
from tailrace.storage import AccessDeniedError, Storage, UnsafeKeyError, check_key
from tailrace.storage.buckets import MemoryBucketRegistry, SqlBucketRegistry
from tailrace.storage.s3 import S3Store

BAD_URIS = {
    "s3://../credentials.json": "bucket name '..'",
    "s3://%2e%2e/credentials.json": "bucket name '..'",
    "s3://b/../../credentials.json": "'..' segment",
    "s3://b/%2e%2e/%2E%2E/credentials.json": "'..' segment",
    "s3://b/a/./c": "'.' segment",
    "s3://b/a//c": "empty segment",
    "s3://b//etc/passwd": "absolute",
    "s3://b/..%5c..%5cx": "backslash",
    "s3://b/a%00b": "NUL or a control character",
    "s3://b/a%0Ab": "NUL or a control character",
    "s3://b/x?y": "'?' and '#'",
    "s3://b/" + "k" * 1100: "longer than 1024 bytes",
    "file:///etc/passwd?": None,
}


@pytest.mark.parametrize("uri", sorted(BAD_URIS))
def test_unsafe_uris_are_refused_never_resolved(tmp_path: Path, uri: str) -> None:
    storage = Storage(home=tmp_path).for_owner("mallory")
    with pytest.raises((UnsafeKeyError, AccessDeniedError)) as info:
        storage.resolve(uri)
    if BAD_URIS[uri]:
        assert BAD_URIS[uri] in str(info.value)


def test_the_unrestricted_view_refuses_unsafe_keys_too(tmp_path: Path) -> None:
    with pytest.raises(UnsafeKeyError, match="bucket name"):
        Storage(home=tmp_path).read_bytes("s3://../credentials.json")
    with pytest.raises(UnsafeKeyError, match="segment"):
        Storage(home=tmp_path).write_bytes("s3://b/x/../../../escape", b"x")
    assert not (tmp_path / "escape").exists()


def test_safe_keys_pass_unchanged() -> None:
    for key in ("", "a", "a/b/", "dt=2012%2F12/part-0", "x y/ü.txt", "..a/b..", ".hidden/_SUCCESS"):
        assert check_key(key) == key


def test_buckets_are_claimed_by_first_use_and_shared_by_grant(tmp_path: Path) -> None:
    base = Storage(home=tmp_path, buckets=SqlBucketRegistry(create_engine(f"sqlite:///{tmp_path}/m.db")))
    alice, bob = base.for_owner("alice"), base.for_owner("bob")
    alice.write_bytes("s3://alice-b/data/part-0", b"secret")
    assert base.buckets.owner_of("alice-b") == "alice"
    with pytest.raises(AccessDeniedError, match="belongs to another owner"):
        bob.read_bytes("s3://alice-b/data/part-0")
    with pytest.raises(AccessDeniedError):
        bob.write_bytes("s3://alice-b/data/part-0", b"pwned")
    with pytest.raises(AccessDeniedError):
        list(bob.list_files("s3://alice-b/"))
    base.buckets.grant("alice-b", "bob")
    assert bob.read_bytes("s3://alice-b/data/part-0") == b"secret"
    assert base.buckets.revoke("alice-b", "bob")
    with pytest.raises(AccessDeniedError):
        bob.read_bytes("s3://alice-b/data/part-0")
    # A second registry on the same database sees the same owners (the server and the CLI).
    again = SqlBucketRegistry(create_engine(f"sqlite:///{tmp_path}/m.db"))
    assert again.list() == [("alice-b", "alice", [])]


def test_local_paths_only_under_allowed_dirs(tmp_path: Path) -> None:
    allowed = tmp_path / "shared"
    (allowed / "in").mkdir(parents=True)
    (allowed / "in" / "x.tsv").write_text("1\n")
    (allowed / "link").symlink_to(tmp_path)  # a link inside the allowed dir pointing out
    (tmp_path / "credentials.json").write_text("{}")
    view = Storage(home=tmp_path, allowed_local_dirs=(allowed,)).for_owner("alice")
    assert view.read_bytes(f"file://{allowed}/in/x.tsv") == b"1\n"
    assert view.read_bytes(f"{allowed}/in/x.tsv") == b"1\n"
    for uri in (
        f"{tmp_path}/credentials.json",
        f"file://{tmp_path}/credentials.json",
        f"{allowed}/../credentials.json",
        f"{allowed}/link/credentials.json",
        "/proc/self/environ",
        "relative/path",
    ):
        with pytest.raises(AccessDeniedError, match=r"not allowed|must be absolute"):
            view.read_bytes(uri)
    # Nothing is allowed by default.
    with pytest.raises(AccessDeniedError, match="allowed_local_dirs"):
        Storage(home=tmp_path).for_owner("alice").read_bytes(f"{allowed}/in/x.tsv")


def test_owner_view_on_s3(s3_store: S3Store, tmp_path: Path) -> None:
    s3 = s3_store
    base = Storage(home=tmp_path, s3=s3, buckets=MemoryBucketRegistry())
    base.for_owner("alice").write_bytes("s3://ns-alice/k", b"v")
    with pytest.raises(AccessDeniedError):
        base.for_owner("bob").read_bytes("s3://ns-alice/k")
    with pytest.raises(UnsafeKeyError):
        base.for_owner("alice").read_bytes("s3://ns-alice/../k")


def test_links_inside_an_allowed_directory_do_not_lead_out(tmp_path: Path) -> None:
    allowed = tmp_path / "shared"
    (allowed / "in").mkdir(parents=True)
    (allowed / "in" / "ok.tsv").write_text("1\n")
    (tmp_path / "credentials.json").write_text('{"secret": "s"}')
    (allowed / "in" / "planted.tsv").symlink_to(tmp_path / "credentials.json")
    view = Storage(home=tmp_path, allowed_local_dirs=(allowed,)).for_owner("alice")
    with pytest.raises(AccessDeniedError, match=r"planted\.tsv"):
        list(view.list_files(f"{allowed}/in/"))
    with pytest.raises(AccessDeniedError):
        view.read_bytes(f"{allowed}/in/planted.tsv")
