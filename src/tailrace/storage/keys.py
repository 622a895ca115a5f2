"""The one place where object keys, bucket names and local paths from definitions are checked.

A key is refused (never resolved) when it could name something outside its bucket: `..` or `.`
segments, a leading '/', empty segments, a backslash, NUL or any control character; the same
checks run on the percent-decoded form, so `%2e%2e` is refused too.
"""

from __future__ import annotations

import re
from pathlib import Path

from tailrace.errors import StorageError


class UnsafeKeyError(StorageError):
    """A key, bucket name or path that could escape its namespace."""


class AccessDeniedError(StorageError):
    """The owner may not reach this bucket or local path."""


MAX_KEY_BYTES = 1024
"""S3's limit on a key's UTF-8 length."""

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,254}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket(bucket: str, *, uri: str | None = None) -> str:
    """Bucket names as S3 (with its legacy names) allows: letters, digits, '.', '-', '_'; never '..'."""
    where = f" in {uri!r}" if uri else ""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise UnsafeKeyError(
            f"bucket name {bucket!r}{where} is not allowed: use up to 255 letters, digits, "
            "'.', '-' or '_', starting with a letter or digit, without '..'"
        )
    return bucket


def check_key(key: str, *, uri: str | None = None, directory: bool = False) -> str:
    """The key as given, when it is safe; a trailing '/' is allowed (a directory prefix)."""
    where = f" in {uri!r}" if uri else ""

    def refuse(why: str) -> UnsafeKeyError:
        return UnsafeKeyError(f"object key {key[:200]!r}{where} is refused: {why}")

    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise refuse(f"longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise refuse("it contains NUL or a control character")
    if "\\" in key:
        raise refuse("it contains a backslash (keys use '/')")
    if key.startswith("/"):
        raise refuse("it is absolute (starts with '/')")
    body = key[:-1] if key.endswith("/") else key
    if not body:
        return key
    for segment in body.split("/"):
        if segment == "":
            raise refuse("it has an empty segment ('//')")
        if segment in (".", ".."):
            raise refuse(f"it has a '{segment}' segment")
    return key


def check_local_path(text: str, allowed: tuple[Path, ...], *, what: str) -> Path:
    """A local path from a definition, resolved (symlinks followed); it must lie under one of
    `allowed` (themselves resolved). Control characters are refused before anything is touched."""
    if _CONTROL.search(text):
        raise UnsafeKeyError(f"{what} {text[:200]!r} is refused: it contains NUL or a control character")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise AccessDeniedError(f"{what} {text!r} is refused: local paths must be absolute")
    resolved = path.resolve()
    for root in allowed:
        root = root.resolve()
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    raise AccessDeniedError(
        f"{what} {text!r} is refused: local paths are not allowed in definitions on this server "
        "(use s3:// URIs; an operator can allow a directory with allowed_local_dirs in tailrace.toml)"
    )
