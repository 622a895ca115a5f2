"""Hive text tables as Spark DataFrames, read the way LazySimpleSerDe / OpenCSVSerde read them.

Same rules as the DuckDB engine (engines/hive/serde.py): fields split on the table's delimiter,
missing fields are NULL, extra fields dropped, the null format reads as NULL, a value that does
not parse as the column's type is NULL (integers must be all digits, as in Hive). Every row also
gets `__pos`, its position in the input (file order, then line), used to break ORDER BY ties the
way the DuckDB engine does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tailrace.engines.hive import complex_types
from tailrace.engines.metastore import TableSpec

POS = "__pos"
_LINE_BITS = 33  # monotonically_increasing_id: partition id above bit 33, row number below


class ReadError(ValueError):
    """A column type or row format the Spark reader cannot read."""


def _spark_type(hive_type: str) -> str:
    t = hive_type.strip().lower()
    base = t.split("(")[0].strip()
    simple = {
        "string": "string",
        "varchar": "string",
        "char": "string",
        "binary": "string",
        "tinyint": "tinyint",
        "smallint": "smallint",
        "int": "int",
        "integer": "int",
        "bigint": "bigint",
        "double": "double",
        "float": "float",
        "boolean": "boolean",
        "timestamp": "timestamp",
        "date": "date",
    }
    if base in simple:
        return simple[base]
    if t == "double precision":
        return "double"
    if base in ("decimal", "numeric"):
        args = t[len(base) :].strip()
        return f"decimal{args}" if args else "decimal(10,0)"
    raise ReadError(f"column type {hive_type!r} is not supported by the spark engine")


def parse(raw: Any, hive_type: str, coll: str, mapkey: str, null_format: str) -> Any:
    """A Column turning the raw text of a field (or NULL) into the column's value, Hive's way."""
    from pyspark.sql import functions as F

    shape = complex_types.parse(hive_type)
    if shape is not None:
        kind, parts = shape
        if any(complex_types.parse(t) is not None for _, t in parts):
            raise ReadError(f"nested complex type {hive_type!r} is not supported by the spark engine")

        def item(x: Any, typ: str) -> Any:
            return parse(F.when(x != F.lit(null_format), x), typ, coll, mapkey, null_format)

        items = F.split(raw, re.escape(coll), -1)
        if kind == "array":
            value = F.transform(items, lambda x: item(x, parts[0][1]))
        elif kind == "map":
            value = F.map_from_entries(
                F.transform(
                    items,
                    lambda e: F.struct(
                        item(F.split(e, re.escape(mapkey), 2)[0], parts[0][1]).alias("key"),
                        item(F.split(e, re.escape(mapkey), 2)[1], parts[1][1]).alias("value"),
                    ),
                )
            )
        else:
            value = F.struct(*[item(items[i], typ).alias(name) for i, (name, typ) in enumerate(parts)])
        return F.when(raw.isNotNull(), value)
    t = hive_type.strip().lower()
    spark = _spark_type(t)
    base = t.split("(")[0].strip()
    if base in ("varchar", "char") and "(" in t:
        return F.substring(raw, 1, int(t.split("(")[1].rstrip(") ")))
    if spark == "string":
        return raw
    if spark in ("tinyint", "smallint", "int", "bigint"):
        return F.when(raw.rlike(r"^[+-]?[0-9]+$"), raw.cast(spark))
    if spark == "boolean":
        low = F.lower(raw)
        return F.when(low == "true", F.lit(True)).when(low == "false", F.lit(False))
    return raw.cast(spark)


def frame(
    session: Any,
    spec: TableSpec,
    pieces: Sequence[tuple[Sequence[tuple[str, str]], Sequence[str]]],
    file_index: dict[str, int],
) -> Any:
    """The table as a DataFrame: its columns, partition columns and `__pos`. `pieces` are
    (partition values, files) pairs; `file_index` numbers every file in input order."""
    from pyspark.sql import functions as F

    coll = spec.properties.get(complex_types.COLLECTION_KEY, "\x02")
    mapkey = spec.properties.get(complex_types.MAPKEY_KEY, "\x03")
    frames = []
    for values, files in pieces:
        given = dict(values)
        if files:
            lines = session.read.option("lineSep", "\n").text(list(files))
        else:
            lines = session.createDataFrame([], "value string")
        cols = []
        if spec.row_format == "csv_serde":
            fields = _csv_fields(spec.field_delimiter, spec.quote_char)
            for i, (name, _typ) in enumerate(spec.columns):
                cols.append(_unquote(fields[i], spec.quote_char).alias(name))
        else:
            fields = F.split(F.col("value"), re.escape(spec.field_delimiter), -1)
            for i, (name, typ) in enumerate(spec.columns):
                raw = F.when(fields[i] != F.lit(spec.null_format), fields[i])
                cols.append(parse(raw, typ, coll, mapkey, spec.null_format).alias(name))
        for name, typ in spec.partitioned_by:
            v = given.get(name)
            lit = F.lit(None).cast("string") if v in (None, "__HIVE_DEFAULT_PARTITION__") else F.lit(v)
            cols.append(parse(lit, typ, coll, mapkey, spec.null_format).alias(name))
        if files:
            mapping = F.create_map(*[x for f in files for x in (F.lit(_uri(f)), F.lit(file_index[f]))])
            line = F.monotonically_increasing_id().bitwiseAND(F.lit((1 << _LINE_BITS) - 1))
            pos = (F.element_at(mapping, F.input_file_name()).cast("bigint") * F.lit(1 << _LINE_BITS)) + line
        else:
            pos = F.lit(0).cast("bigint")
        df = lines.select(*cols, pos.alias(POS))
        if spec.skip_header_lines:
            df = df.where(
                F.col(POS).bitwiseAND(F.lit((1 << _LINE_BITS) - 1)) >= F.lit(spec.skip_header_lines)
            )
        frames.append(df)
    out = frames[0]
    for other in frames[1:]:
        out = out.unionAll(other)
    return out


def short_lines(session: Any, spec: TableSpec, files: Sequence[str]) -> int:
    """Lines with fewer fields than the table has columns (the DuckDB engine's `short lines`)."""
    from pyspark.sql import functions as F

    if not files or spec.row_format == "csv_serde":
        return 0
    fields = F.size(F.split(F.col("value"), re.escape(spec.field_delimiter), -1))
    lines = session.read.option("lineSep", "\n").text(list(files))
    return int(lines.where(fields < F.lit(len(spec.columns))).count())


def _csv_fields(delim: str, quote: str) -> Any:
    """OpenCSVSerde's fields of a line (serde.py): a field is either quoted (the quote doubled
    inside) or anything up to the delimiter; an empty field is '', a missing one NULL. Spark's
    CSV reader would read an empty field as NULL, so the line is split here instead."""
    from pyspark.sql import functions as F

    d, q = re.escape(delim), re.escape(quote)
    pattern = f"(?:^|{d})({q}(?:[^{q}]|{q}{q})*{q}|[^{d}]*)"
    return F.regexp_extract_all(F.col("value"), F.lit(pattern), F.lit(1))


def _unquote(field: Any, quote: str) -> Any:
    from pyspark.sql import functions as F

    quoted = (F.length(field) >= 2) & field.startswith(quote) & field.endswith(quote)
    inner = F.replace(F.substring(field, 2, F.length(field) - 2), F.lit(quote * 2), F.lit(quote))
    # substring's length must be a column here, as the field's length varies.
    return F.when(quoted, inner).otherwise(field)


def _uri(path: str) -> str:
    from pathlib import Path

    return Path(path).resolve().as_uri()
