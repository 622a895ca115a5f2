"""Access keys: issued by tailrace, kept in the state store, looked up on every signed request.

A key belongs to an owner; every pipeline belongs to the owner of the key that created it. SigV4
verification needs the secret itself for the HMAC (like AWS), so with a SecretBox it is stored
encrypted with a key kept outside the database (tailrace.state.secretbox), and decrypted on use.

`ensure_initial_key` gives a fresh installation its first key and writes it, with the endpoint,
to `<home>/credentials.json` (mode 0600) so the client commands on the same host find it.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import threading
import time
from pathlib import Path

from tailrace.api.credentials import write_credentials_file
from tailrace.clock import Clock
from tailrace.errors import UsageError
from tailrace.state import AccessKey, StateStore
from tailrace.state.secretbox import SecretBox, is_encrypted

DEFAULT_OWNER = "default"
KEY_ID_PREFIX = "TRK"
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_OWNER_CHARS = set(string.ascii_letters + string.digits + "-_.@")


def new_access_key_id() -> str:
    """'TRK' and 17 upper-case alphanumerics: 20 characters, the length of an AWS key id."""
    return KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(17))


_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def new_secret() -> str:
    """40 characters of AWS's secret alphabet: never a leading '-' that a command line
    would take for an option (token_urlsafe's did, one key in 64)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def check_owner(owner: str) -> str:
    if not owner or len(owner) > 128 or not set(owner) <= _OWNER_CHARS:
        raise UsageError(f"owner {owner!r} must be 1-128 characters from letters, digits and - _ . @")
    return owner


class KeyStore:
    """Access keys over the state store, with a short-lived cache for request verification.

    A disabled key stops working within `cache_seconds` in every process.
    """

    def __init__(
        self, store: StateStore, clock: Clock, *, cache_seconds: float = 5.0, box: SecretBox | None = None
    ) -> None:
        """Without `box` secrets are stored as issued (tests and throw-away stores only)."""
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.box = box
        self._cache: dict[str, tuple[float, AccessKey]] = {}
        self._lock = threading.Lock()

    def create(self, owner: str = DEFAULT_OWNER) -> AccessKey:
        key = AccessKey(
            access_key_id=new_access_key_id(),
            secret_access_key=new_secret(),
            owner=check_owner(owner),
            created_at=self.clock.now(),
        )
        with self.store.transaction() as tx:
            tx.keys.add(self._sealed(key))
        return key

    def _sealed(self, key: AccessKey) -> AccessKey:
        if self.box is None:
            return key
        return dataclasses.replace(key, secret_access_key=self.box.encrypt(key.secret_access_key))

    def _opened(self, key: AccessKey) -> AccessKey:
        if self.box is None:
            return key
        return dataclasses.replace(key, secret_access_key=self.box.decrypt(key.secret_access_key))

    def encrypt_stored(self) -> int:
        """Encrypt every secret still stored in plain text (from before encryption); how many."""
        if self.box is None:
            return 0
        done = 0
        with self.store.transaction() as tx:
            for key in tx.keys.list():
                if not is_encrypted(key.secret_access_key):
                    tx.keys.set_stored_secret(key.access_key_id, self.box.encrypt(key.secret_access_key))
                    done += 1
        return done

    def list(self, owner: str | None = None) -> list[AccessKey]:
        with self.store.transaction(readonly=True) as tx:
            return [self._opened(k) for k in tx.keys.list(owner)]

    def set_active(self, access_key_id: str, active: bool) -> None:
        with self.store.transaction() as tx:
            tx.keys.set_active(access_key_id, active)
        with self._lock:
            self._cache.pop(access_key_id, None)

    def cached(self, access_key_id: str) -> AccessKey | None:
        """The key if the cache holds it fresh, without touching the database (None: ask
        `lookup`). Lets the API check a known caller's signature on its event loop."""
        # The monotonic clock only ages the cache; it never decides a request's validity.
        with self._lock:
            hit = self._cache.get(access_key_id)
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        return None

    def lookup(self, access_key_id: str) -> AccessKey | None:
        """The active key with this id (cached briefly), or None."""
        hit = self.cached(access_key_id)
        if hit is not None:
            return hit
        now = time.monotonic()
        with self.store.transaction(readonly=True) as tx:
            key = tx.keys.find(access_key_id)
        if key is None or not key.active:
            with self._lock:
                self._cache.pop(access_key_id, None)
            return None
        key = self._opened(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (now, key)
        return key

    def secret_for(self, access_key_id: str) -> str | None:
        key = self.lookup(access_key_id)
        return key.secret_access_key if key else None

    def ensure_initial_key(self, home: Path, endpoint: str) -> AccessKey | None:
        """Create the first key when the store has none and write the credentials file.

        Returns the new key (for printing once), or None when keys already exist.
        """
        if self.list():
            return None
        key = self.create(DEFAULT_OWNER)
        write_credentials_file(home, key, endpoint)
        return key
