"""Database objects as connections: JdbcDatabase, RdsDatabase and RedshiftDatabase, and the
inline connection fields of old MySqlDataNode samples.

JDBC URLs map to Python drivers: `jdbc:postgresql://` (psycopg), `jdbc:mysql://` and
`jdbc:mariadb://` (PyMySQL), `jdbc:sqlite:` (sqlite3), `jdbc:duckdb:` (duckdb). An RdsDatabase's
`rdsInstanceId` and a RedshiftDatabase's `clusterId` are looked up in `[databases.rds_instances]`
and `[databases.redshift_clusters]`. Passwords are never part of a message: errors name the
object and field, and driver messages are scrubbed of the password before they are shown.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from tailrace.errors import Location, StorageError
from tailrace.runtime.activities.common import node_field
from tailrace.runtime.context import AttemptContext
from tailrace.runtime.dbaccess import DEFAULT_PORTS, Endpoint, ReachRefused, addresses
from tailrace.runtime.staging import ActivityError
from tailrace.storage import OwnerStorage

_NET = re.compile(
    r"^jdbc:(?P<scheme>postgresql|mysql|mariadb|redshift)://(?P<host>\[[0-9a-fA-F:.]+\]|[^/:?;\[\]]+)"
    r"(?::(?P<port>\d+))?(?:/(?P<db>[^?;]*))?(?:[?;](?P<query>.*))?$"
)
KIND_OF_SCHEME = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "redshift": "postgresql"}
# JDBC properties that only tune a connection; anything else (a host, a socket, a key file) is
# refused rather than guessed at.
PROPERTIES = {
    "postgresql": {"sslmode", "connecttimeout", "applicationname", "currentschema", "ssl", "tcpkeepalive"},
    "mysql": {
        "connecttimeout",
        "usessl",
        "characterencoding",
        "useunicode",
        "servertimezone",
        "zerodatetimebehavior",
        "autoreconnect",
        "sslmode",
    },
}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class Database:
    kind: str  # postgresql, mysql, sqlite, duckdb
    object_id: str
    field: str
    """The field that named the target (connectionString, rdsInstanceId, clusterId)."""
    shown: str
    """The target as logs show it (never with a password)."""
    endpoint: Endpoint | None = None
    path: str = ""
    user: str | None = None
    password: str | None = dc_field(default=None, repr=False)
    properties: Mapping[str, str] = dc_field(default_factory=dict)
    sandboxed: bool = False
    """An owner's attempt on the service: a DuckDB file is opened with external access off."""

    def where(self) -> Location:
        return Location(object_id=self.object_id, field=self.field)


def _error(obj_id: str, fld: str, message: str) -> ActivityError:
    return ActivityError(message, Location(object_id=obj_id, field=fld))


def _properties(ctx: AttemptContext, obj_id: str, kind: str, query: str | None) -> dict[str, str]:
    items = [p for p in (query or "").replace(";", "&").split("&") if p]
    items += ctx.resolved.objects[obj_id].strings("jdbcProperties")
    props: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise _error(obj_id, "jdbcProperties", f"expected NAME=value; found {item!r}")
        if key.strip().lower() not in PROPERTIES[kind]:
            raise _error(
                obj_id,
                "jdbcProperties",
                f"property {key.strip()!r} is not supported for {kind}; these are: "
                + ", ".join(sorted(PROPERTIES[kind])),
            )
        props[key.strip().lower()] = value.strip()
    return props


def _network(
    ctx: AttemptContext, obj_id: str, fld: str, url: str, user: str | None, password: str | None
) -> Database:
    m = _NET.match(url)
    if m is None:
        raise _error(
            obj_id,
            fld,
            f"expected jdbc:postgresql://host[:port]/database or jdbc:mysql://host[:port]/database; found {url.split('?')[0]!r}",
        )
    kind = KIND_OF_SCHEME[m["scheme"]]
    host = m["host"].strip("[]")
    port = int(m["port"] or DEFAULT_PORTS[kind])
    dbname = m["db"] or ctx.field("databaseName", object_id=obj_id) or ""
    try:
        address = sorted(addresses(host))[0]
    except OSError as exc:
        raise _error(obj_id, fld, f"cannot resolve host {host!r}: {exc}")
    endpoint = Endpoint(kind, host, address, port, dbname)
    try:
        ctx.databases.check(ctx.owner or "default", endpoint) if _on_service(ctx) else _metadata(
            ctx, endpoint
        )
    except ReachRefused as exc:
        raise _error(obj_id, fld, str(exc))
    return Database(
        kind,
        obj_id,
        fld,
        f"{kind}://{host}:{port}/{dbname}",
        endpoint=endpoint,
        user=user,
        password=password,
        properties=_properties(ctx, obj_id, kind, m["query"]),
    )


def _metadata(ctx: AttemptContext, endpoint: Endpoint) -> None:
    """Single-user runs may reach any database but the metadata one."""
    if ctx.databases.is_metadata(endpoint):
        raise ReachRefused(
            f"{endpoint.host}:{endpoint.port}/{endpoint.dbname} is tailrace's own metadata database"
        )


def _on_service(ctx: AttemptContext) -> bool:
    return isinstance(ctx.storage, OwnerStorage)


def _local(ctx: AttemptContext, obj_id: str, kind: str, target: str, user: str | None) -> Database:
    """A SQLite or DuckDB file is a local path like any other: on the service it must lie under
    allowed_local_dirs, and it is never the metadata database."""
    meta = ctx.databases.metadata_file()
    if target not in ("", ":memory:"):
        if meta and os.path.realpath(target) == os.path.realpath(meta):
            raise _error(obj_id, "connectionString", f"{target} is tailrace's own metadata database")
        if _on_service(ctx):
            try:
                ctx.storage.resolve(target)
            except StorageError as exc:
                raise _error(obj_id, "connectionString", f"connectionString: {exc}")
    return Database(
        kind,
        obj_id,
        "connectionString",
        f"{kind}:{target}",
        path=target,
        user=user,
        sandboxed=_on_service(ctx),
    )


def _from_url(
    ctx: AttemptContext, obj_id: str, fld: str, url: str, user: str | None, pw: str | None
) -> Database:
    for kind in ("sqlite", "duckdb"):
        if url.startswith(f"jdbc:{kind}:"):
            return _local(ctx, obj_id, kind, url[len(f"jdbc:{kind}:") :], user)
    if url.startswith("jdbc:redshift:"):
        raise _error(
            obj_id,
            fld,
            "jdbc:redshift: connection strings need a RedshiftDatabase (mapped by [databases.redshift_clusters])",
        )
    if url.startswith(("jdbc:postgresql:", "jdbc:mysql:", "jdbc:mariadb:")):
        return _network(ctx, obj_id, fld, url, user, pw)
    raise _error(
        obj_id,
        fld,
        f"unsupported connection string {url.split('?')[0]!r}: jdbc:postgresql:, jdbc:mysql:, jdbc:mariadb:, "
        "jdbc:sqlite: and jdbc:duckdb: run here",
    )


def database_of(ctx: AttemptContext, db_id: str) -> Database:
    """The connection a database object names, checked against what the owner may reach."""
    db = ctx.resolved.objects[db_id]
    user = ctx.field("username", object_id=db_id)
    password = ctx.field("*password", object_id=db_id)
    conf = ctx.databases.settings
    if db.type == "JdbcDatabase":
        return _from_url(
            ctx,
            db_id,
            "connectionString",
            ctx.field("connectionString", object_id=db_id) or "",
            user,
            password,
        )
    if db.type == "RdsDatabase":
        instance = ctx.field("rdsInstanceId", object_id=db_id) or ""
        url = conf.rds_instances.get(instance)
        if url is None:
            raise _error(
                db_id,
                "rdsInstanceId",
                f"RDS instance {instance!r} is not configured; map it in tailrace.toml: [databases.rds_instances] "
                f'"{instance}" = "jdbc:mysql://host:3306/database"',
            )
        return _with_database_name(ctx, db_id, _from_url(ctx, db_id, "rdsInstanceId", url, user, password))
    if db.type == "RedshiftDatabase":
        cluster = ctx.field("clusterId", object_id=db_id)
        url = ctx.field("connectionString", object_id=db_id) or ""
        if cluster is not None:
            mapped, fld, key = conf.redshift_clusters.get(cluster), "clusterId", cluster
        elif url.startswith("jdbc:redshift:"):
            m = _NET.match(url)
            key = m["host"] if m else url
            mapped, fld = conf.redshift_clusters.get(key), "connectionString"
        else:
            mapped, fld, key = url, "connectionString", url
        if not mapped or not mapped.startswith("jdbc:postgresql:"):
            raise _error(
                db_id,
                fld,
                f"Redshift cluster {key!r} is not mapped to PostgreSQL; add to tailrace.toml: "
                f'[databases.redshift_clusters] "{key}" = "jdbc:postgresql://host:5432/database"',
            )
        return _with_database_name(ctx, db_id, _from_url(ctx, db_id, fld, mapped, user, password))
    raise _error(
        db_id, "type", f"{db.type} is not a database (JdbcDatabase, RdsDatabase or RedshiftDatabase)"
    )


def _with_database_name(ctx: AttemptContext, db_id: str, db: Database) -> Database:
    """databaseName picks the database on the mapped server (checked again: it changes the target)."""
    name = ctx.field("databaseName", object_id=db_id)
    if not name or db.endpoint is None or name == db.endpoint.dbname:
        return db
    ep = Endpoint(db.kind, db.endpoint.host, db.endpoint.address, db.endpoint.port, name)
    try:
        ctx.databases.check(ctx.owner or "default", ep) if _on_service(ctx) else _metadata(ctx, ep)
    except ReachRefused as exc:
        raise _error(db_id, "databaseName", str(exc))
    shown = f"{db.kind}://{ep.host}:{ep.port}/{name}"
    return Database(
        db.kind,
        db.object_id,
        db.field,
        shown,
        endpoint=ep,
        user=db.user,
        password=db.password,
        properties=db.properties,
    )


def node_database(ctx: AttemptContext, node_id: str) -> Database:
    """A SqlDataNode's, MySqlDataNode's or RedshiftDataNode's database: its `database` reference,
    or (MySqlDataNode of old samples) its own connectionString, username and *password."""
    node = ctx.resolved.objects[node_id]
    db_id = node.ref("database")
    if db_id is not None:
        return database_of(ctx, db_id)
    url = node_field(ctx, node_id, "connectionString") if node.type == "MySqlDataNode" else None
    if url:
        user = node_field(ctx, node_id, "username")
        password = node_field(ctx, node_id, "*password")
        return _from_url(ctx, node_id, "connectionString", url, user, password)
    raise _error(
        node_id,
        "database",
        f"a {node.type} needs 'database' (a JdbcDatabase, RdsDatabase or RedshiftDatabase)",
    )


# --- connecting ---------------------------------------------------------------------------------


def scrub(db: Database, text: str) -> str:
    """A driver's message without the password (some echo connection parameters)."""
    return text.replace(db.password, "****") if db.password else text


@contextlib.contextmanager
def connect(ctx: AttemptContext, db: Database) -> Iterator[Any]:
    """A DB-API connection in one transaction: committed on success, rolled back on error.
    Connection failures (host down, wrong credentials) are ActivityErrors naming the object."""
    timeout = ctx.databases.settings.connect_timeout
    try:
        conn = _open(db, timeout)
    except Exception as exc:
        raise ActivityError(
            f"cannot connect to {db.shown} as {db.user or '(no user)'}: {scrub(db, str(exc)).strip()}",
            db.where(),
        )
    try:
        yield conn
        conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _open(db: Database, timeout: float) -> Any:
    if db.kind == "postgresql":
        import psycopg

        assert db.endpoint is not None
        props = db.properties
        kwargs: dict[str, Any] = {
            "host": db.endpoint.host,
            "hostaddr": db.endpoint.address,  # the checked address, not a second lookup
            "port": db.endpoint.port,
            "dbname": db.endpoint.dbname,
            "user": db.user or "",
            "password": db.password or "",
            "passfile": os.devnull,  # never the server's ~/.pgpass
            "connect_timeout": max(1, int(float(props.get("connecttimeout", timeout)))),
        }
        if "sslmode" in props:
            kwargs["sslmode"] = props["sslmode"]
        if "applicationname" in props:
            kwargs["application_name"] = props["applicationname"]
        schema = props.get("currentschema")
        if schema:
            if not IDENTIFIER.match(schema):
                raise ValueError(f"currentSchema {schema!r} is not a plain identifier")
            kwargs["options"] = f"-c search_path={schema}"
        return psycopg.connect(**kwargs)
    if db.kind == "mysql":
        import pymysql

        assert db.endpoint is not None
        ms = db.properties.get("connecttimeout")  # JDBC's connectTimeout is in milliseconds
        return pymysql.connect(
            host=db.endpoint.address,
            port=db.endpoint.port,
            user=db.user or "",
            password=db.password or "",
            database=db.endpoint.dbname or None,
            connect_timeout=max(1, int(int(ms) / 1000)) if ms and ms.isdigit() else max(1, int(timeout)),
            autocommit=False,
            local_infile=False,  # LOAD DATA LOCAL would read the server's files
            charset="utf8mb4",
        )
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path)
        if db.sandboxed:
            # ATTACH (and VACUUM INTO, which attaches) would open or create any file the server
            # can reach, as the server's user: the metadata database, another owner's files.
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            conn.set_authorizer(_sqlite_authorizer)
        return conn
    import duckdb

    config: dict[str, Any] = (
        {"enable_external_access": False, "lock_configuration": True} if db.sandboxed else {}
    )
    return duckdb.connect(db.path, config=config)


SQLITE_REFUSED = (
    "on the service, ATTACH, VACUUM INTO, the directory pragmas and extensions are refused: a "
    "SQLite database of a definition reaches its own file only"
)

# Pragmas that point SQLite at other directories of the server (temporary files written there as
# the server's user).
_SQLITE_FILE_PRAGMAS = frozenset({"temp_store_directory", "data_store_directory"})


def _sqlite_authorizer(action: int, arg1: str | None, *_: Any) -> int:
    """Deny ATTACH and DETACH by name (the limit above also stops VACUUM INTO's own ATTACH)."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _SQLITE_FILE_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def explain(db: Database, exc: BaseException) -> str:
    """A statement's failure as shown: the driver's message without the password, and why, when
    the sandbox refused it."""
    text = scrub(db, str(exc))
    if db.kind == "sqlite" and db.sandboxed and ("authoriz" in text or "attached databases" in text):
        text += f" ({SQLITE_REFUSED})"
    return text


def placeholders(db: Database, sql: str) -> str:
    """JDBC `?` placeholders in the driver's style (psycopg and PyMySQL want %s; % itself doubles)."""
    if db.kind not in ("postgresql", "mysql"):
        return sql
    out, quote = [], ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
            out.append(ch)
        else:
            out.append("%s" if ch == "?" else "%%" if ch == "%" else ch)
    return "".join(out)


def statements(script: str, *, hash_comments: bool = False) -> list[str]:
    """A script split on `;` outside quotes and comments (PyMySQL runs one statement a call);
    `#` starts a comment in MySQL only."""
    out: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(script):
        ch = script[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(script):
                current.append(script[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif script.startswith("--", i) or (hash_comments and ch == "#"):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
            continue
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = len(script) if end < 0 else end + 2
            continue
        elif ch == ";":
            text = "".join(current).strip()
            if text:
                out.append(text)
            current = []
        else:
            current.append(ch)
        i += 1
    text = "".join(current).strip()
    if text:
        out.append(text)
    return out


def table_name(name: str, obj_id: str, fld: str = "table") -> str:
    """A table name (optionally schema.table), checked because it is pasted into SQL; left
    unquoted so the database folds its case as Redshift and MySQL users expect."""
    parts = name.split(".")
    if len(parts) > 2 or not all(IDENTIFIER.match(p) for p in parts):
        raise _error(
            obj_id, fld, f"{name!r} is not a table name (letters, digits, _ and $, optionally schema.table)"
        )
    return name
