"""Hive DDL as table specs: CREATE TABLE properties, partition specs, ALTER TABLE ... PARTITION."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from tailrace.engines.hive.complex_types import COLLECTION_KEY, MAPKEY_KEY
from tailrace.engines.hive.serde import SerdeError, duck_type
from tailrace.engines.hive.translate_errors import TranslateError
from tailrace.engines.metastore import DEFAULT_DB, RowFormat, TableSpec

CSV_SERDES = {
    "org.apache.hadoop.hive.serde2.opencsvserde",
    "com.bizo.hive.serde.csv.csvserde",
    "org.apache.hadoop.hive.serde2.lazy.opencsvserde",
}
LAZY_SERDES = {
    "org.apache.hadoop.hive.serde2.lazy.lazysimpleserde",
    "org.apache.hadoop.hive.serde2.lazysimpleserde",
}


def delimiter_byte(text: str) -> str:
    """Hive reads a delimiter given as a number as that byte ('9' is a tab), else its first char."""
    if re.fullmatch(r"-?\d+", text):
        return chr(int(text) & 0xFF)
    if not text:
        raise TranslateError("an empty delimiter is not allowed")
    return text[0]


def hive_type_name(kind: exp.DataType) -> str:
    text = kind.sql(dialect="hive").lower()
    return "string" if text == "text" else text


def _columns(schema: exp.Schema | None) -> list[tuple[str, str]]:
    if schema is None:
        return []
    out: list[tuple[str, str]] = []
    for col in schema.expressions:
        if isinstance(col, exp.ColumnDef):
            kind = col.args.get("kind")
            typ = hive_type_name(kind) if kind is not None else "string"
            try:
                duck_type(typ)
            except SerdeError as exc:
                raise TranslateError(str(exc), col)
            out.append((col.name, typ))
    return out


@dataclass
class CreateTable:
    spec: TableSpec
    if_not_exists: bool
    has_location: bool


MANAGED_FORMATS = {"ORC", "RCFILE", "SEQUENCEFILE", "PARQUET", "AVRO"}


def create_table_spec(create: exp.Create, *, database: str, warehouse: str) -> CreateTable:
    """The spec a CREATE TABLE statement describes (the query of a CTAS is not run here)."""
    target = create.this
    table = target.this if isinstance(target, exp.Schema) else target
    if not isinstance(table, exp.Table):
        raise TranslateError("CREATE TABLE needs a table name", create)
    db = (table.db or database).lower()
    name = table.name
    columns = _columns(target) if isinstance(target, exp.Schema) else []
    props = create.args.get("properties")
    external = False
    location: str | None = None
    row_format: RowFormat = "delimited"
    delim = "\x01"
    null_format = "\\N"
    quote, escape = '"', "\\"
    partitioned: list[tuple[str, str]] = []
    skip_header = 0
    extra: dict[str, str] = {}
    binary_format: tuple[str, exp.Expr] | None = None
    for prop in props.expressions if props is not None else []:
        if isinstance(prop, exp.ExternalProperty):
            external = True
        elif isinstance(prop, exp.LocationProperty):
            location = prop.this.this if isinstance(prop.this, exp.Literal) else prop.this.sql()
        elif isinstance(prop, exp.PartitionedByProperty):
            partitioned = _columns(prop.this if isinstance(prop.this, exp.Schema) else None)
        elif isinstance(prop, exp.RowFormatDelimitedProperty):
            fields = prop.args.get("fields")
            if fields is not None:
                delim = delimiter_byte(fields.this)
            null = prop.args.get("null")
            if null is not None:
                null_format = null.this
            for arg, key in (("collection_items", COLLECTION_KEY), ("map_keys", MAPKEY_KEY)):
                if prop.args.get(arg) is not None:
                    extra[key] = delimiter_byte(prop.args[arg].this)
            lines = prop.args.get("lines")
            if lines is not None and lines.this not in ("\n", "10"):
                raise TranslateError("LINES TERMINATED BY supports only '\\n' (as in Hive)", lines)
        elif isinstance(prop, exp.RowFormatSerdeProperty):
            serde = prop.this.this.lower() if isinstance(prop.this, exp.Literal) else ""
            params = {}
            sp = prop.args.get("serde_properties")
            for p in sp.expressions if sp is not None else []:
                params[p.this.this if isinstance(p.this, exp.Literal) else p.name] = p.args["value"].this
            if serde in CSV_SERDES:
                row_format = "csv_serde"
                delim = params.get("separatorChar", ",")[:1] or ","
                quote = params.get("quoteChar", '"')[:1] or '"'
                escape = params.get("escapeChar", "\\")[:1] or "\\"
            elif serde in LAZY_SERDES:
                delim = delimiter_byte(params.get("field.delim", params.get("serialization.format", "\x01")))
                null_format = params.get("serialization.null.format", null_format)
            else:
                raise TranslateError(
                    f"SerDe '{prop.this.this}' is not supported (LazySimpleSerDe and OpenCSVSerde are)", prop
                )
        elif isinstance(prop, exp.FileFormatProperty):
            fmt = prop.this.name.upper() if prop.this is not None else "TEXTFILE"
            if fmt != "TEXTFILE":
                binary_format = (fmt, prop)
        elif isinstance(prop, exp.Property):
            key = prop.this.this if isinstance(prop.this, exp.Literal) else prop.name
            value = prop.args.get("value")
            text = value.this if isinstance(value, exp.Literal) else (value.sql() if value else "")
            if key == "skip.header.line.count":
                skip_header = int(text or 0)
            else:
                extra[str(key)] = str(text)
    if binary_format is not None:
        fmt, where = binary_format
        if external or location is not None or fmt not in MANAGED_FORMATS:
            raise TranslateError(f"STORED AS {fmt} is not supported (TEXTFILE is)", where)
        # Only tailrace writes and reads a managed table in its warehouse: its rows are kept
        # as text, which gives the same query results as Hive's ORC or RCFile.
    if row_format == "csv_serde":
        columns = [(c, "string") for c, _ in columns]
    default_location = (
        f"{warehouse}/{name.lower()}" if db == DEFAULT_DB else f"{warehouse}/{db}.db/{name.lower()}"
    )
    spec = TableSpec(
        name=name,
        database=db,
        columns=columns,
        location=location or default_location,
        row_format=row_format,
        field_delimiter=delim,
        null_format=null_format,
        quote_char=quote,
        escape_char=escape,
        external=external,
        partitioned_by=partitioned,
        skip_header_lines=skip_header,
        properties=extra,
    )
    return CreateTable(
        spec=spec, if_not_exists=bool(create.args.get("exists")), has_location=location is not None
    )


_PART = re.compile(r"PARTITION\s*\(([^)]*)\)(?:\s+LOCATION\s+'((?:[^'\\]|\\.)*)')?", re.IGNORECASE)
_KV = re.compile(r"""\s*([`\w]+)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,\s]+)\s*(?:,|$)""")


@dataclass
class PartitionClause:
    values: list[tuple[str, str]]
    location: str | None
    offset: int


def parse_partition_clauses(text: str) -> list[PartitionClause]:
    """`PARTITION (dt='x', h=1) [LOCATION '...']` clauses of an ALTER TABLE statement."""
    out: list[PartitionClause] = []
    for m in _PART.finditer(text):
        values: list[tuple[str, str]] = []
        body = m.group(1)
        pos = 0
        while pos < len(body.strip()) and pos < len(body):
            kv = _KV.match(body, pos)
            if not kv:
                raise TranslateError(
                    f"cannot read the partition spec '{body.strip()}' (expected key='value', ...)"
                )
            raw = kv.group(2)
            value = raw[1:-1] if raw[:1] in ("'", '"') else raw
            values.append((kv.group(1).strip("`").lower(), value))
            pos = kv.end()
        out.append(PartitionClause(values=values, location=m.group(2), offset=m.start()))
    return out


def ordered_values(
    spec: TableSpec, given: list[tuple[str, str]], *, node: exp.Expr | None = None
) -> tuple[tuple[str, str], ...]:
    """Partition values in the table's partition-column order; every column must be given."""
    names = [c for c, _ in spec.partitioned_by]
    if not names:
        raise TranslateError(f"table {spec.name} is not partitioned", node)
    given_map = dict(given)
    unknown = [k for k in given_map if k not in names]
    if unknown:
        raise TranslateError(
            f"'{unknown[0]}' is not a partition column of {spec.name} ({', '.join(names)})", node
        )
    missing = [k for k in names if k not in given_map]
    if missing:
        raise TranslateError(f"partition spec of {spec.name} is missing {', '.join(missing)}", node)
    return tuple((k, given_map[k]) for k in names)


def like_table(create: exp.Create) -> exp.Table | None:
    """The source table of CREATE TABLE t LIKE src, if that is the statement."""
    props = create.args.get("properties")
    for prop in props.expressions if props is not None else []:
        if isinstance(prop, exp.LikeProperty) and isinstance(prop.this, exp.Table):
            return prop.this
    return None


def duck_to_hive(duck: str) -> str:
    """A Hive column type for a DuckDB result type (CREATE TABLE ... AS SELECT): primitives, and
    arrays, maps and structs of primitives (nested collections are stored as text)."""
    d = duck.strip().upper()
    complex_type = _complex_to_hive(duck.strip())
    if complex_type is not None:
        return complex_type
    return _primitive_to_hive(d)


def _split_parens(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()] if cur.strip() else out


def _complex_to_hive(duck: str) -> str | None:
    d = duck.upper()
    if d.endswith("[]"):
        inner = _primitive_to_hive(d[:-2]) if not _is_complex(d[:-2]) else None
        return None if inner is None else f"array<{inner}>"
    if d.startswith("MAP(") and d.endswith(")"):
        parts = _split_parens(duck[4:-1])
        if len(parts) != 2 or any(_is_complex(p) for p in parts):
            return None
        return f"map<{_primitive_to_hive(parts[0].upper())},{_primitive_to_hive(parts[1].upper())}>"
    if d.startswith("STRUCT(") and d.endswith(")"):
        fields = []
        for f in _split_parens(duck[7:-1]):
            name, _, typ = f.strip().partition(" ")
            if _is_complex(typ):
                return None
            fields.append(f"{name.strip(chr(34)).lower()}:{_primitive_to_hive(typ.strip().upper())}")
        return f"struct<{','.join(fields)}>"
    return None


def _is_complex(duck: str) -> bool:
    d = duck.strip().upper()
    return d.endswith("[]") or d.startswith(("MAP(", "STRUCT("))


def _primitive_to_hive(d: str) -> str:
    return {
        "VARCHAR": "string",
        "BIGINT": "bigint",
        "HUGEINT": "bigint",
        "INTEGER": "int",
        "SMALLINT": "smallint",
        "TINYINT": "tinyint",
        "DOUBLE": "double",
        "FLOAT": "float",
        "BOOLEAN": "boolean",
        "DATE": "date",
        "TIMESTAMP": "timestamp",
    }.get(d, d.lower() if d.startswith("DECIMAL") else "string")
