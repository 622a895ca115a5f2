"""What databases and DynamoDB tables an attempt may reach: the `[databases]` settings, the
metadata database's address (never reachable from a definition) and the DynamoDB endpoint.

Hosts are compared by address (a name and its IP are one host), so `localhost` cannot stand in
for a refused `127.0.0.1`; the checked address is the one the driver then connects to.
"""

from __future__ import annotations

import fnmatch
import functools
import socket
from dataclasses import dataclass, field

from tailrace.config import DatabaseSettings

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


class ReachRefused(Exception):
    """A database or table the policy refuses; the message says why and what to configure."""


@functools.lru_cache(maxsize=256)
def addresses(host: str) -> frozenset[str]:
    """Every IP address `host` resolves to. :raises OSError: when it does not resolve."""
    return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))


@dataclass(frozen=True)
class Endpoint:
    """A network database: kind, address actually connected to, port, database name."""

    kind: str
    host: str
    address: str
    port: int
    dbname: str


@dataclass(frozen=True, kw_only=True)
class DatabaseAccess:
    settings: DatabaseSettings = field(default_factory=DatabaseSettings)
    metadata_url: str | None = None
    """SQLAlchemy URL of the metadata database (sqlite:///..., postgresql+psycopg://...)."""
    dynamodb_endpoint_url: str | None = None
    region: str = "us-east-1"
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)

    # --- the metadata database --------------------------------------------------------------------

    def metadata_endpoint(self) -> Endpoint | None:
        if not self.metadata_url:
            return None
        from sqlalchemy.engine import make_url

        url = make_url(self.metadata_url)
        kind = url.get_backend_name()
        if kind not in DEFAULT_PORTS or not url.host:
            return None
        return Endpoint(kind, url.host, "", url.port or DEFAULT_PORTS[kind], url.database or "")

    def metadata_file(self) -> str | None:
        if not self.metadata_url or not self.metadata_url.startswith("sqlite:"):
            return None
        from sqlalchemy.engine import make_url

        return make_url(self.metadata_url).database or None

    def is_metadata(self, target: Endpoint) -> bool:
        meta = self.metadata_endpoint()
        if meta is None or meta.port != target.port:
            return False
        try:
            same_host = target.address in addresses(meta.host)
        except OSError:
            same_host = meta.host == target.host
        # On one server, MySQL reaches every database it has grants on: the server is the unit.
        return same_host and (target.kind == "mysql" or meta.dbname == target.dbname)

    # --- owners' reach ----------------------------------------------------------------------------

    def check(self, owner: str, target: Endpoint) -> None:
        """:raises ReachRefused: when the target is the metadata database, or (on the service)
        not listed for the owner under [databases.allowed]."""
        if self.is_metadata(target):
            raise ReachRefused(
                f"{target.host}:{target.port}/{target.dbname} is tailrace's own metadata database; "
                "no definition may connect to it"
            )
        rules = [r for key in (owner, "*") for r in _split(self.settings.allowed.get(key, ""))]
        if any(_rule_matches(rule, target) for rule in rules):
            return
        raise ReachRefused(
            f"{target.host}:{target.port}/{target.dbname} is not allowed for owner '{owner}'; an "
            f"administrator allows it in tailrace.toml: [databases.allowed] {owner} = "
            f'"{target.host}:{target.port}/{target.dbname}"'
        )

    def check_table(self, owner: str, table: str) -> None:
        """:raises ReachRefused: unless a pattern of [databases.dynamodb_tables] allows the table."""
        patterns = [p for key in (owner, "*") for p in _split(self.settings.dynamodb_tables.get(key, ""))]
        if any(fnmatch.fnmatchcase(table, p) for p in patterns):
            return
        raise ReachRefused(
            f"DynamoDB table '{table}' is not allowed for owner '{owner}'; an administrator allows it "
            f'in tailrace.toml: [databases.dynamodb_tables] {owner} = "{table}"'
        )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _rule_matches(rule: str, target: Endpoint) -> bool:
    """host[:port][/database]; host may be `*`; a database part may be a shell pattern."""
    where, _, dbname = rule.partition("/")
    host, _, port = where.rpartition(":") if where.count(":") == 1 else (where, "", "")
    if port and (not port.isdigit() or int(port) != target.port):
        return False
    if dbname and not fnmatch.fnmatchcase(target.dbname, dbname):
        return False
    if host == "*":
        return True
    try:
        return target.address in addresses(host)
    except OSError:
        return False
