"""Metastore commands read with regular expressions (sqlglot keeps them as opaque Commands):
ALTER TABLE ... ADD/DROP PARTITION / RECOVER PARTITIONS, MSCK REPAIR TABLE, SHOW, DESCRIBE; the
other ALTER TABLE forms are in alter.py."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp

from tailrace.engines.hive import ddl
from tailrace.engines.hive.alter import run_alter
from tailrace.engines.hive.tables import partition_location
from tailrace.engines.metastore import PartitionSpec, TableSpec
from tailrace.engines.result import StatementResult

if TYPE_CHECKING:
    from tailrace.engines.hive.engine import Echo, HiveEngine
    from tailrace.engines.hive.locate import Where

_NAME = r"`?([\w.]+)`?"
_ALTER_ADD = re.compile(
    rf"ALTER\s+TABLE\s+{_NAME}\s+ADD\s+(IF\s+NOT\s+EXISTS\s+)?(PARTITION\b.*)$", re.I | re.S
)
_ALTER_DROP = re.compile(rf"ALTER\s+TABLE\s+{_NAME}\s+DROP\s+(IF\s+EXISTS\s+)?(PARTITION\b.*)$", re.I | re.S)
_RECOVER = re.compile(
    rf"(?:ALTER\s+TABLE\s+{_NAME}\s+RECOVER\s+PARTITIONS|MSCK\s+REPAIR\s+TABLE\s+{_NAME})\s*$", re.I
)
_SHOW_TABLES = re.compile(r"SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+(\w+))?(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$", re.I)
_SHOW_PARTS = re.compile(rf"SHOW\s+PARTITIONS\s+{_NAME}\s*$", re.I)
_DESCRIBE = re.compile(rf"DESC(?:RIBE)?\s+(?:EXTENDED\s+|FORMATTED\s+)?{_NAME}\s*$", re.I)
_LOCATION = re.compile(r"\bLOCATION\s+'([^']*)'", re.I)
_CREATE_DB = re.compile(r"CREATE\s+(?:DATABASE|SCHEMA)\s+(IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.I)


def table_named(engine: HiveEngine, where: Where, name: str, start: int) -> TableSpec:
    db, _, tbl = name.rpartition(".")
    node = exp.Table(this=exp.to_identifier(tbl), db=exp.to_identifier(db) if db else None)
    node.this.meta["start"] = start
    return engine._require(where, node)


def run_command(engine: HiveEngine, where: Where, text: str, say: Echo) -> StatementResult | None:
    body = text.strip()
    res = StatementResult(number=0, kind="", line=0, column=0)
    m = _CREATE_DB.match(body)
    if m:
        res.kind = "CREATE DATABASE"
        loc = _LOCATION.search(body, m.end())
        if loc is not None:
            # Not used (an owner's tables go under its own warehouse), but checked as a table's
            # LOCATION is: another owner's bucket or a local path is refused, not ignored.
            engine.files.storage.resolve(loc.group(1))
        return res
    m = _ALTER_ADD.match(body)
    if m:
        spec = table_named(engine, where, m.group(1), m.start(1))
        res.kind, res.table = "ADD PARTITION", spec.name
        added = 0
        for clause in ddl.parse_partition_clauses(m.group(3)):
            values = ddl.ordered_values(spec, clause.values)
            location = clause.location or partition_location(spec, values)
            if engine.metastore.add_partition(
                spec.database, spec.name, PartitionSpec(values=values, location=location)
            ):
                added += 1
            elif not m.group(2):
                raise where.error(
                    f"Partition already exists: {PartitionSpec(values=values, location='').name}",
                    offset=m.start(3) + clause.offset,
                )
        res.message = f"{added} partition(s) added"
        return res
    m = _ALTER_DROP.match(body)
    if m:
        spec = table_named(engine, where, m.group(1), m.start(1))
        res.kind, res.table = "DROP PARTITION", spec.name
        for clause in ddl.parse_partition_clauses(m.group(3)):
            values = ddl.ordered_values(spec, clause.values)
            if not engine.metastore.drop_partition(spec.database, spec.name, values) and not m.group(2):
                raise where.error(
                    f"No partition {PartitionSpec(values=values, location='').name} in {spec.name}",
                    offset=m.start(3) + clause.offset,
                )
            if not spec.external:
                engine.files.delete_all(partition_location(spec, values))
        return res
    m = _RECOVER.match(body)
    if m:
        name = m.group(1) or m.group(2)
        spec = table_named(engine, where, name, m.start(1) if m.group(1) else m.start(2))
        if not spec.partitioned_by:
            raise where.error(
                f"table {spec.name} is not partitioned", offset=m.start(1) if m.group(1) else m.start(2)
            )
        res.kind, res.table = "MSCK REPAIR TABLE", spec.name
        known = {p.values for p in engine.metastore.list_partitions(spec.database, spec.name)}
        new_parts = [p for p in engine.files.discover_partitions(spec) if p.values not in known]
        for part in new_parts:
            engine.metastore.add_partition(spec.database, spec.name, part)
            say(f"Repair: Added partition to metastore {spec.name}:{part.name}")
        res.message = f"{len(new_parts)} partition(s) added"
        return res
    m = _SHOW_TABLES.match(body)
    if m:
        db = (m.group(1) or engine.database).lower()
        pattern = m.group(2)
        names = sorted(
            {t.name for t in engine.metastore.list_tables(db)} | {n for d, n in engine.session if d == db}
        )
        if pattern:
            rx = re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in pattern.split("|")), re.I)
            names = [n for n in names if rx.fullmatch(n)]
        res.kind, res.columns, res.select_rows = "SHOW TABLES", ["tab_name"], [(n,) for n in names]
        return res
    m = _SHOW_PARTS.match(body)
    if m:
        spec = table_named(engine, where, m.group(1), m.start(1))
        parts = engine.metastore.list_partitions(spec.database, spec.name)
        res.kind, res.table = "SHOW PARTITIONS", spec.name
        res.columns, res.select_rows = ["partition"], [(p.name,) for p in parts]
        return res
    m = _DESCRIBE.match(body)
    if m:
        spec = table_named(engine, where, m.group(1), m.start(1))
        rows: list[tuple[str | None, ...]] = [(c, t, "") for c, t in spec.all_columns]
        if spec.partitioned_by:
            rows.append(("# Partition Information", "", ""))
            rows += [(c, t, "") for c, t in spec.partitioned_by]
        if "EXTENDED" in body.upper() or "FORMATTED" in body.upper():
            rows.append(("Location:", spec.location, ""))
            rows.append(("Table Type:", "EXTERNAL_TABLE" if spec.external else "MANAGED_TABLE", ""))
        res.kind, res.table = "DESCRIBE", spec.name
        res.columns, res.select_rows = ["col_name", "data_type", "comment"], rows
        return res
    return run_alter(engine, where, body)
