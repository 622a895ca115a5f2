"""The console's local users: names, roles and scrypt password hashes in the state store.

Roles: `admin` sees and acts on every owner's pipelines (unless given an owner), `operator`
sees and acts on its owner's, `readonly` sees its owner's and cannot act.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tailrace.clock import Clock, SystemClock
from tailrace.errors import UsageError
from tailrace.state import schema

ROLES = ("admin", "operator", "readonly")
_NAME_CHARS = set(string.ascii_letters + string.digits + "-_.@")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

# scrypt at n=2**14, r=8: 16 MiB and ~50 ms a check; the parameters are stored with each hash
# so that they can be raised later without invalidating the old ones.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 2**20, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 2**20,
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A fixed hash to check against when the user does not exist, so that a missing name takes as
# long as a wrong password (names cannot be probed by timing).
_DUMMY = hash_password(secrets.token_urlsafe(12))


@dataclass(frozen=True, kw_only=True)
class User:
    name: str
    role: str
    owner: str | None
    created_at: datetime


def check_name(name: str) -> str:
    if not name or len(name) > 128 or not set(name) <= _NAME_CHARS:
        raise UsageError(f"user name {name!r} must be 1-128 characters from letters, digits and - _ . @")
    return name


class UserStore:
    """Console users on the metadata database (the engine of the SQL state store)."""

    def __init__(self, engine: sa.Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.t = schema.console_users

    def create(self, name: str, password: str, *, role: str = "operator", owner: str | None = None) -> User:
        from tailrace.api.keys import DEFAULT_OWNER, check_owner

        check_name(name)
        if role not in ROLES:
            raise UsageError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise UsageError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        if owner is not None:
            check_owner(owner)
        elif role != "admin":
            owner = DEFAULT_OWNER
        user = User(name=name, role=role, owner=owner, created_at=self.clock.now())
        with self.engine.begin() as conn:
            if conn.execute(sa.select(self.t.c.name).where(self.t.c.name == name)).first():
                raise UsageError(f"user {name!r} already exists (delete it first to change it)")
            conn.execute(
                sa.insert(self.t).values(
                    name=name,
                    password_hash=hash_password(password),
                    role=role,
                    owner=owner,
                    created_at=user.created_at,
                )
            )
        return user

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.t).order_by(self.t.c.name)).mappings().all()
        return [_user(r) for r in rows]

    def delete(self, name: str) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(sa.delete(self.t).where(self.t.c.name == name)).rowcount
            # Their open sessions end with them (access-key sessions are named key:ID, and a
            # user name has no colon).
            conn.execute(sa.delete(schema.console_sessions).where(schema.console_sessions.c.name == name))
        return bool(gone)

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None (the same time either way)."""
        if len(password) > MAX_PASSWORD:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.t).where(self.t.c.name == name)).mappings().first()
        if row is None:
            check_password(password, _DUMMY)
            return None
        return _user(row) if check_password(password, row["password_hash"]) else None


def _user(row: Any) -> User:
    return User(name=row["name"], role=row["role"], owner=row["owner"], created_at=row["created_at"])
