"""Secrets at rest: access-key secrets are stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256)
with a key kept outside the database, so a copy of the database (a backup, a dump, a read of
the file by another local user) does not give the keys away. SigV4 needs the secret itself to
check a signature, so it is encrypted, not hashed.

The key lives in a file (`TAILRACE_SECRET_KEY_FILE`, default `<home>/secret.key`, mode 0600),
created on first use. Losing it makes every stored secret unreadable: back it up apart from the
database.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from tailrace.errors import ConfigError

PREFIX = "fernet:"
"""Marks an encrypted value; anything else is a plaintext secret from before encryption."""
KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes, *, source: str = "key") -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ConfigError(f"{source}: not a secret key (expected 32 url-safe base64-encoded bytes)")
        self.source = source

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> SecretBox:
        """The key in `path`; with `create`, a new one is written there (0600) when it is missing."""
        try:
            data = path.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                raise ConfigError(f"secret key file {path} does not exist")
            data = _create_key_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot read the secret key file {path}: {exc.strerror or exc}")
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, 0o600)  # readable by others: close it (the database's secrets depend on it)
        return cls(data, source=str(path))

    @classmethod
    def for_home(cls, home: Path, key_file: Path | None = None) -> SecretBox:
        env = os.environ.get("TAILRACE_SECRET_KEY_FILE")
        path = key_file or (Path(env).expanduser() if env else home / KEY_FILE)
        return cls.from_file(path)

    def encrypt(self, secret: str) -> str:
        if is_encrypted(secret):
            return secret
        return PREFIX + self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not is_encrypted(stored):
            return stored  # written before encryption; KeyStore.encrypt_stored() migrates it
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise ConfigError(
                f"a stored secret cannot be decrypted with the key in {self.source}: the key file was "
                "replaced or belongs to another installation (restore the original key file)"
            )


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return key
