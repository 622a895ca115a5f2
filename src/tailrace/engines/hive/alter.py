"""ALTER TABLE beyond partitions (Language Manual, DDL): RENAME TO, SET LOCATION, SET
TBLPROPERTIES, SET SERDEPROPERTIES, ADD/REPLACE COLUMNS and CHANGE [COLUMN].

Metadata only, as in Hive, except RENAME TO of a managed table in its default place: Hive moves
its directory to the new name's, and so does this. Data files are never rewritten: a column
added later reads as NULL from older files.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from tailrace.engines.hive import ddl
from tailrace.engines.hive.dialect import TailraceHive
from tailrace.engines.metastore import DEFAULT_DB, PartitionSpec, TableSpec
from tailrace.engines.result import StatementResult

if TYPE_CHECKING:
    from tailrace.engines.hive.engine import HiveEngine
    from tailrace.engines.hive.locate import Where

_NAME = r"`?([\w.]+)`?"
_HEAD = rf"\s*ALTER\s+TABLE\s+{_NAME}\s+"
_RENAME = re.compile(_HEAD + rf"RENAME\s+TO\s+{_NAME}\s*$", re.I)
_LOCATION = re.compile(_HEAD + r"SET\s+LOCATION\s+'((?:[^'\\]|\\.)*)'\s*$", re.I)
_PROPS = re.compile(_HEAD + r"SET\s+(TBLPROPERTIES|SERDEPROPERTIES)\s*\((.*)\)\s*$", re.I | re.S)
_COLUMNS = re.compile(_HEAD + r"(ADD|REPLACE)\s+COLUMNS\s*\((.*)\)\s*(?:CASCADE|RESTRICT)?\s*$", re.I | re.S)
_CHANGE = re.compile(
    _HEAD + r"CHANGE\s+(?:COLUMN\s+)?`?(\w+)`?\s+`?(\w+)`?\s+(.+?)"
    r"(?:\s+COMMENT\s+'(?:[^'\\]|\\.)*')?(?:\s+(FIRST|AFTER\s+`?\w+`?))?\s*(?:CASCADE|RESTRICT)?\s*$",
    re.I | re.S,
)
_KV = re.compile(
    r"""\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*(,|$)"""
)


def run_alter(engine: HiveEngine, where: Where, text: str) -> StatementResult | None:
    """The statement's result, or None when it is no ALTER TABLE form this module knows."""
    for rx, action in (
        (_RENAME, _rename),
        (_LOCATION, _set_location),
        (_PROPS, _set_properties),
        (_COLUMNS, _columns),
        (_CHANGE, _change),
    ):
        m = rx.match(text)
        if m:
            spec = _metastore_table(engine, where, m)
            res = StatementResult(number=0, kind="ALTER TABLE", line=0, column=0, table=spec.name)
            action(engine, where, m, spec)
            return res
    return None


def _metastore_table(engine: HiveEngine, where: Where, m: re.Match[str]) -> TableSpec:
    db, _, name = m.group(1).rpartition(".")
    node = exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(db) if db else None)
    node.this.meta["start"] = m.start(1)
    spec = engine._require(where, node)
    if engine.metastore.get_table(spec.database, spec.name) is None:
        raise where.error(
            f"{spec.name} is a table of this run only; ALTER TABLE changes stored tables", offset=m.start(1)
        )
    return spec


def _default_location(engine: HiveEngine, database: str, name: str) -> str:
    return (
        f"{engine.warehouse}/{name}" if database == DEFAULT_DB else f"{engine.warehouse}/{database}.db/{name}"
    )


def _rename(engine: HiveEngine, where: Where, m: re.Match[str], spec: TableSpec) -> None:
    db, _, new = m.group(2).lower().rpartition(".")
    db = db or spec.database
    if engine._lookup(db, new) is not None:
        raise where.error(f"Table {new} already exists", offset=m.start(2))
    old_home = _default_location(engine, spec.database, spec.name)
    moved = not spec.external and spec.location.rstrip("/") == old_home
    location = _default_location(engine, db, new) if moved else spec.location
    parts = engine.metastore.list_partitions(spec.database, spec.name)
    if moved:
        engine.files.move(old_home, location)
    engine.metastore.create_table(dataclasses.replace(spec, name=new, database=db, location=location))
    for part in parts:
        loc = part.location
        if moved and loc.startswith(old_home + "/"):
            loc = location + loc[len(old_home) :]
        engine.metastore.add_partition(db, new, PartitionSpec(values=part.values, location=loc))
    engine.metastore.drop_table(spec.database, spec.name)


def _set_location(engine: HiveEngine, where: Where, m: re.Match[str], spec: TableSpec) -> None:
    location = m.group(2).replace("\\'", "'")
    if not location.strip():
        raise where.error("SET LOCATION needs a location", offset=m.start(2))
    engine.metastore.replace_table(spec.with_location(location.rstrip("/")))
    engine.files.forget(spec.location)


def _pairs(where: Where, text: str, offset: int) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text) and text[pos:].strip():
        kv = _KV.match(text, pos)
        if kv is None:
            raise where.error("expected 'key'='value' pairs separated by commas", offset=offset + pos)
        out[kv.group(1)[1:-1]] = kv.group(2)[1:-1]
        pos = kv.end()
    return out


def _set_properties(engine: HiveEngine, where: Where, m: re.Match[str], spec: TableSpec) -> None:
    props = _pairs(where, m.group(3), m.start(3))
    changes: dict[str, object] = {}
    extra = dict(spec.properties)
    for key, value in props.items():
        if key == "serialization.null.format":
            changes["null_format"] = value
        elif key == "skip.header.line.count":
            if not value.strip().lstrip("-").isdigit():
                raise where.error(
                    f"skip.header.line.count must be a number, not {value!r}", offset=m.start(3)
                )
            changes["skip_header_lines"] = max(0, int(value))
        elif key.upper() == "EXTERNAL" and m.group(2).upper() == "TBLPROPERTIES":
            changes["external"] = value.upper() == "TRUE"
        elif key in ("field.delim", "serialization.format"):
            changes["field_delimiter"] = ddl.delimiter_byte(value)
        elif key == "separatorChar" and spec.row_format == "csv_serde":
            changes["field_delimiter"] = value[:1] or ","
        elif key == "quoteChar" and spec.row_format == "csv_serde":
            changes["quote_char"] = value[:1] or '"'
        elif key == "escapeChar" and spec.row_format == "csv_serde":
            changes["escape_char"] = value[:1] or "\\"
        else:
            extra[key] = value
    updated = dataclasses.replace(spec, properties=extra, **changes)  # type: ignore[arg-type]
    engine.metastore.replace_table(updated)
    engine.files.forget(spec.location)


def _column_list(where: Where, text: str, offset: int) -> list[tuple[str, str]]:
    try:
        tree = sqlglot.parse_one(f"CREATE TABLE __alter ({text})", read=TailraceHive)
    except sqlglot.errors.SqlglotError:
        raise where.error("expected a column list: name type[, name type ...]", offset=offset)
    schema = tree.this if isinstance(tree, exp.Create) else None
    cols = ddl._columns(schema) if isinstance(schema, exp.Schema) else []
    if not cols:
        raise where.error("expected a column list: name type[, name type ...]", offset=offset)
    return cols


def _columns(engine: HiveEngine, where: Where, m: re.Match[str], spec: TableSpec) -> None:
    cols = _column_list(where, m.group(3), m.start(3))
    if m.group(2).upper() == "ADD":
        have = {c for c, _ in spec.all_columns}
        for name, _ in cols:
            if name.lower() in have:
                raise where.error(f"Duplicate column name: {name}", offset=m.start(3))
        columns = [*spec.columns, *cols]
    else:
        columns = cols
    engine.metastore.replace_table(dataclasses.replace(spec, columns=columns))


def _change(engine: HiveEngine, where: Where, m: re.Match[str], spec: TableSpec) -> None:
    old, new = m.group(2).lower(), m.group(3).lower()
    names = [c for c, _ in spec.columns]
    if old not in names:
        raise where.error(f"Invalid column reference {old}", offset=m.start(2))
    if new != old and new in {c for c, _ in spec.all_columns}:
        raise where.error(f"Duplicate column name: {new}", offset=m.start(3))
    (_, hive_type), *_ = _column_list(where, f"{new} {m.group(4)}", m.start(4))
    columns = [(new, hive_type) if c == old else (c, t) for c, t in spec.columns]
    position = (m.group(5) or "").upper()
    if position:
        moved = columns.pop(names.index(old))
        if position == "FIRST":
            columns.insert(0, moved)
        else:
            after = position.split()[-1].strip("`").lower()
            at = [c for c, _ in columns].index(after) if after in [c for c, _ in columns] else -1
            if at < 0:
                raise where.error(f"Invalid column reference {after}", offset=m.start(5))
            columns.insert(at + 1, moved)
    engine.metastore.replace_table(dataclasses.replace(spec, columns=columns))
