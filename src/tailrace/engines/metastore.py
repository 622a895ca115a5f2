"""The Hive metastore: table definitions and partitions that outlive one script run.

Tables live in `hive_tables` and partitions in `hive_partitions` of the metadata database
(SQLite by default, PostgreSQL when configured). The tables are created idempotently and carry
the `hive_` prefix so the state store's migrations can adopt them later.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from tailrace.errors import ConflictError, TailraceError
from tailrace.state.engine import create_tables

RowFormat = Literal["delimited", "csv_serde"]

DEFAULT_DB = "default"


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """One Hive table. Names are case-insensitive (kept lower-case, like Hive).

    `columns` and `partitioned_by` are (name, hive type) pairs, e.g. ("size", "bigint").
    `row_format` "delimited" is LazySimpleSerDe (`ROW FORMAT DELIMITED`); "csv_serde" is
    OpenCSVSerde (every column a string, fields quoted on write).
    """

    name: str
    columns: list[tuple[str, str]]
    location: str
    row_format: RowFormat = "delimited"
    field_delimiter: str = "\x01"
    null_format: str = "\\N"
    quote_char: str = '"'
    escape_char: str = "\\"
    external: bool = True
    database: str = DEFAULT_DB
    partitioned_by: list[tuple[str, str]] = field(default_factory=list)
    skip_header_lines: int = 0
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.lower())
        object.__setattr__(self, "database", self.database.lower())
        object.__setattr__(self, "columns", [(c.lower(), t.lower()) for c, t in self.columns])
        object.__setattr__(self, "partitioned_by", [(c.lower(), t.lower()) for c, t in self.partitioned_by])

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.name}"

    @property
    def all_columns(self) -> list[tuple[str, str]]:
        return [*self.columns, *self.partitioned_by]

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "location": self.location,
            "row_format": self.row_format,
            "field_delimiter": self.field_delimiter,
            "null_format": self.null_format,
            "quote_char": self.quote_char,
            "escape_char": self.escape_char,
            "external": self.external,
            "partitioned_by": self.partitioned_by,
            "skip_header_lines": self.skip_header_lines,
            "properties": self.properties,
        }

    @classmethod
    def from_json(cls, database: str, name: str, data: dict[str, Any]) -> TableSpec:
        return cls(
            name=name,
            database=database,
            columns=[tuple(c) for c in data["columns"]],
            location=data["location"],
            row_format=data.get("row_format", "delimited"),
            field_delimiter=data.get("field_delimiter", "\x01"),
            null_format=data.get("null_format", "\\N"),
            quote_char=data.get("quote_char", '"'),
            escape_char=data.get("escape_char", "\\"),
            external=bool(data.get("external", True)),
            partitioned_by=[tuple(c) for c in data.get("partitioned_by", [])],
            skip_header_lines=int(data.get("skip_header_lines", 0)),
            properties=dict(data.get("properties", {})),
        )

    def with_location(self, location: str) -> TableSpec:
        return replace(self, location=location)


@dataclass(frozen=True, kw_only=True)
class PartitionSpec:
    """One partition: its values in partition-column order, and where its files are."""

    values: tuple[tuple[str, str], ...]
    location: str

    @property
    def name(self) -> str:
        """Hive's partition name, e.g. `dt=20121221/h=04`."""
        return "/".join(f"{k}={escape_path_value(v)}" for k, v in self.values)


_PATH_UNSAFE = set("\"#%'*/:=?\\\x7f{[]^") | {chr(c) for c in range(0x20)}


def escape_path_value(value: str) -> str:
    """Hive's FileUtils.escapePathName: unsafe characters become %XX in partition paths."""
    return "".join(f"%{ord(ch):02X}" if ch in _PATH_UNSAFE else ch for ch in value)


def unescape_path_value(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "%" and _is_hex(text[i + 1 : i + 3]):
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


class Metastore(ABC):
    """Table definitions and partitions by (database, name); names are compared lower-case.

    `create_table` raises ConflictError when the table exists (callers handle IF NOT EXISTS);
    `get_table` returns None for an unknown table. Partition operations on an unknown table are
    the caller's mistake and may raise any TailraceError.
    """

    @abstractmethod
    def get_table(self, database: str, name: str) -> TableSpec | None:
        """The table, or None."""

    @abstractmethod
    def create_table(self, spec: TableSpec) -> None:
        """Add a table. :raises ConflictError: if (database, name) exists."""

    @abstractmethod
    def replace_table(self, spec: TableSpec) -> None:
        """Create or overwrite the table's definition (partitions are kept)."""

    @abstractmethod
    def drop_table(self, database: str, name: str) -> bool:
        """Remove the table and its partitions; False when it did not exist."""

    @abstractmethod
    def list_tables(self, database: str | None = None) -> list[TableSpec]:
        """Every table (of one database), ordered by database and name."""

    @abstractmethod
    def add_partition(self, database: str, table: str, partition: PartitionSpec) -> bool:
        """Register a partition; False (and no change) when one with the same values exists."""

    @abstractmethod
    def drop_partition(self, database: str, table: str, values: tuple[tuple[str, str], ...]) -> bool:
        """Forget a partition; False when it was not registered."""

    @abstractmethod
    def list_partitions(self, database: str, table: str) -> list[PartitionSpec]:
        """The table's partitions ordered by name."""


class MemoryMetastore(Metastore):
    """Reference backend kept in a dict (tests, and sessions that persist nothing)."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str], TableSpec] = {}
        self._parts: dict[tuple[str, str], dict[str, PartitionSpec]] = {}

    def get_table(self, database: str, name: str) -> TableSpec | None:
        return self._tables.get((database.lower(), name.lower()))

    def create_table(self, spec: TableSpec) -> None:
        key = (spec.database, spec.name)
        if key in self._tables:
            raise ConflictError(f"table {spec.qualified_name} already exists")
        self._tables[key] = spec

    def replace_table(self, spec: TableSpec) -> None:
        self._tables[(spec.database, spec.name)] = spec

    def drop_table(self, database: str, name: str) -> bool:
        key = (database.lower(), name.lower())
        self._parts.pop(key, None)
        return self._tables.pop(key, None) is not None

    def list_tables(self, database: str | None = None) -> list[TableSpec]:
        return [t for k, t in sorted(self._tables.items()) if database is None or k[0] == database.lower()]

    def add_partition(self, database: str, table: str, partition: PartitionSpec) -> bool:
        parts = self._parts.setdefault((database.lower(), table.lower()), {})
        if partition.name in parts:
            return False
        parts[partition.name] = partition
        return True

    def drop_partition(self, database: str, table: str, values: tuple[tuple[str, str], ...]) -> bool:
        name = PartitionSpec(values=values, location="").name
        return self._parts.get((database.lower(), table.lower()), {}).pop(name, None) is not None

    def list_partitions(self, database: str, table: str) -> list[PartitionSpec]:
        parts = self._parts.get((database.lower(), table.lower()), {})
        return [parts[k] for k in sorted(parts)]


_meta = sa.MetaData()
hive_tables = sa.Table(
    "hive_tables",
    _meta,
    sa.Column("db_name", sa.String(128), primary_key=True),
    sa.Column("table_name", sa.String(256), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
hive_partitions = sa.Table(
    "hive_partitions",
    _meta,
    sa.Column("db_name", sa.String(128), primary_key=True),
    sa.Column("table_name", sa.String(256), primary_key=True),
    sa.Column("part_name", sa.String(1024), primary_key=True),
    sa.Column("part_values", sa.Text, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class SqlMetastore(Metastore):
    """The metastore in the metadata database through SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_tables(_meta, engine)  # workers starting together each create them

    def get_table(self, database: str, name: str) -> TableSpec | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(hive_tables.c.spec).where(
                    hive_tables.c.db_name == database.lower(), hive_tables.c.table_name == name.lower()
                )
            ).first()
        return TableSpec.from_json(database.lower(), name.lower(), json.loads(row[0])) if row else None

    def create_table(self, spec: TableSpec) -> None:
        try:
            with self.engine.begin() as conn:
                _insert_table(conn, spec, datetime.now(UTC))
        except sa.exc.IntegrityError:
            raise ConflictError(f"table {spec.qualified_name} already exists")

    def replace_table(self, spec: TableSpec) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            updated = conn.execute(
                hive_tables.update()
                .where(hive_tables.c.db_name == spec.database, hive_tables.c.table_name == spec.name)
                .values(spec=json.dumps(spec.to_json()), updated_at=now)
            ).rowcount
            if not updated:
                _insert_table(conn, spec, now)

    def drop_table(self, database: str, name: str) -> bool:
        db, tbl = database.lower(), name.lower()
        with self.engine.begin() as conn:
            conn.execute(
                hive_partitions.delete().where(
                    hive_partitions.c.db_name == db, hive_partitions.c.table_name == tbl
                )
            )
            n = conn.execute(
                hive_tables.delete().where(hive_tables.c.db_name == db, hive_tables.c.table_name == tbl)
            ).rowcount
        return bool(n)

    def list_tables(self, database: str | None = None) -> list[TableSpec]:
        query = sa.select(hive_tables.c.db_name, hive_tables.c.table_name, hive_tables.c.spec).order_by(
            hive_tables.c.db_name, hive_tables.c.table_name
        )
        if database is not None:
            query = query.where(hive_tables.c.db_name == database.lower())
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [TableSpec.from_json(r[0], r[1], json.loads(r[2])) for r in rows]

    def add_partition(self, database: str, table: str, partition: PartitionSpec) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    hive_partitions.insert().values(
                        db_name=database.lower(),
                        table_name=table.lower(),
                        part_name=partition.name,
                        part_values=json.dumps(list(partition.values)),
                        location=partition.location,
                        created_at=datetime.now(UTC),
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def drop_partition(self, database: str, table: str, values: tuple[tuple[str, str], ...]) -> bool:
        name = PartitionSpec(values=values, location="").name
        with self.engine.begin() as conn:
            n = conn.execute(
                hive_partitions.delete().where(
                    hive_partitions.c.db_name == database.lower(),
                    hive_partitions.c.table_name == table.lower(),
                    hive_partitions.c.part_name == name,
                )
            ).rowcount
        return bool(n)

    def list_partitions(self, database: str, table: str) -> list[PartitionSpec]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(hive_partitions.c.part_values, hive_partitions.c.location)
                .where(
                    hive_partitions.c.db_name == database.lower(),
                    hive_partitions.c.table_name == table.lower(),
                )
                .order_by(hive_partitions.c.part_name)
            ).all()
        return [PartitionSpec(values=tuple((k, v) for k, v in json.loads(r[0])), location=r[1]) for r in rows]


def _insert_table(conn: sa.Connection, spec: TableSpec, now: datetime) -> None:
    conn.execute(
        hive_tables.insert().values(
            db_name=spec.database,
            table_name=spec.name,
            spec=json.dumps(spec.to_json()),
            created_at=now,
            updated_at=now,
        )
    )


OWNER_SEPARATOR = "/"
"""Between an owner and a database name in the stored db_name (owners and Hive names never
contain it)."""


def owner_tag(owner: str) -> str:
    """A name for the owner that survives lower-casing (database names are lower-cased): the
    owner itself when it is lower-case, else '~' and a digest ('Alice' and 'alice' differ)."""
    if owner == owner.lower():
        return owner
    import hashlib

    return "~" + hashlib.sha256(owner.encode()).hexdigest()[:20]


class OwnerMetastore(Metastore):
    """One owner's namespace of a shared metastore: its databases are stored as
    `<owner>/<database>` and every other owner's are invisible. The default owner keeps the
    single-user layout (plain database names), so existing installations read as before."""

    def __init__(self, inner: Metastore, owner: str, *, default_owner: str = "default") -> None:
        self.inner = inner
        self.owner = owner
        self._prefix = "" if owner == default_owner else owner_tag(owner) + OWNER_SEPARATOR

    def _db(self, database: str) -> str:
        if OWNER_SEPARATOR in database:
            raise TailraceError(f"database name {database!r} may not contain '{OWNER_SEPARATOR}'")
        return self._prefix + database.lower()

    def _mine(self, stored: str) -> str | None:
        if self._prefix:
            return stored[len(self._prefix) :] if stored.startswith(self._prefix) else None
        return None if OWNER_SEPARATOR in stored else stored

    def _in(self, spec: TableSpec) -> TableSpec:
        return replace(spec, database=self._db(spec.database))

    def _out(self, spec: TableSpec | None) -> TableSpec | None:
        if spec is None:
            return None
        mine = self._mine(spec.database)
        return replace(spec, database=mine) if mine is not None else None

    def get_table(self, database: str, name: str) -> TableSpec | None:
        return self._out(self.inner.get_table(self._db(database), name))

    def create_table(self, spec: TableSpec) -> None:
        self.inner.create_table(self._in(spec))

    def replace_table(self, spec: TableSpec) -> None:
        self.inner.replace_table(self._in(spec))

    def drop_table(self, database: str, name: str) -> bool:
        return self.inner.drop_table(self._db(database), name)

    def list_tables(self, database: str | None = None) -> list[TableSpec]:
        found = self.inner.list_tables(None if database is None else self._db(database))
        return [s for s in (self._out(t) for t in found) if s is not None]

    def add_partition(self, database: str, table: str, partition: PartitionSpec) -> bool:
        return self.inner.add_partition(self._db(database), table, partition)

    def drop_partition(self, database: str, table: str, values: tuple[tuple[str, str], ...]) -> bool:
        return self.inner.drop_partition(self._db(database), table, values)

    def list_partitions(self, database: str, table: str) -> list[PartitionSpec]:
        return self.inner.list_partitions(self._db(database), table)
