"""Sign-in rate limiting, shared by every console process through the metadata database (where
the sessions are too).

Failed sign-ins are counted per subject: the name (or access key id) tried, and the client's
address. A subject's first `free` failures cost nothing; each further one blocks it for twice
as long as the last (1 s, 2 s, 4 s, ... at most MAX_BLOCK), and while either subject of a
request is blocked the sign-in is refused with 429 and Retry-After before any password is
checked. A name that does not exist counts exactly like one that does, so the answers never
tell whether a user exists. The count starts over after WINDOW without a failure, and a
successful sign-in clears its name's count (not its address's: one valid account must not
reset the guesses made from that address at other names). Subjects are stored as SHA-256
digests: a password typed into the name field is never written down.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from tailrace.clock import Clock
from tailrace.state import schema

WINDOW = timedelta(minutes=15)
MAX_BLOCK = timedelta(minutes=15)
FREE_PER_NAME = 5
FREE_PER_CLIENT = 20
"""Higher: several people may sign in from behind one address (an office's NAT)."""


@dataclass(frozen=True)
class Subject:
    key: str
    """"name:NAME", "key:ID" or "client:ADDRESS"."""
    free: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()


def subjects(login: str, client: str | None) -> list[Subject]:
    """The subjects of a sign-in: `login` ("name:NAME" or "key:ID") first, then the client's."""
    out = [Subject(login, FREE_PER_NAME)]
    if client:
        out.append(Subject(f"client:{client}", FREE_PER_CLIENT))
    return out


def block_for(failures: int, free: int) -> timedelta:
    """How long a subject is blocked after its `failures`-th failure in a row."""
    if failures <= free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free - 1, 20)), MAX_BLOCK)


class LoginThrottle:
    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.t = schema.console_login_failures

    def retry_after(self, who: Sequence[Subject]) -> int:
        """Seconds until none of `who` is blocked (0: try the password now)."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self.t.c.blocked_until).where(
                    self.t.c.subject.in_([s.digest for s in who]), self.t.c.blocked_until > now
                )
            ).all()
        return max((math.ceil((r.blocked_until - now).total_seconds()) for r in rows), default=0)

    def failed(self, who: Sequence[Subject]) -> None:
        """Count a failed sign-in against each subject (atomically: any process may count)."""
        now = self.clock.now()
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.delete(self.t).where(self.t.c.last_at < now - WINDOW))
                    for s in who:
                        self._count(conn, s, now)
                return
            except sa.exc.IntegrityError:  # another process counted a new subject first: again
                if attempt == 2:
                    raise

    def _count(self, conn: sa.Connection, s: Subject, now: datetime) -> None:
        row = conn.execute(
            sa.select(self.t.c.failures, self.t.c.last_at)
            .where(self.t.c.subject == s.digest)
            .with_for_update()
        ).first()
        failures = 1 if row is None or row.last_at < now - WINDOW else row.failures + 1
        wait = block_for(failures, s.free)
        values = {"failures": failures, "last_at": now, "blocked_until": now + wait if wait else None}
        if row is None:
            conn.execute(sa.insert(self.t).values(subject=s.digest, **values))
        else:
            conn.execute(sa.update(self.t).where(self.t.c.subject == s.digest).values(**values))

    def succeeded(self, name: Subject) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.t).where(self.t.c.subject == name.digest))
