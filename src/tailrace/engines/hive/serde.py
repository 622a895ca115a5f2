"""Hive's text SerDes on DuckDB: how a table's files become rows and rows become files.

LazySimpleSerDe (`ROW FORMAT DELIMITED`): fields split on the delimiter, a line with too few
fields gives NULLs for the missing ones, extra fields are dropped, `\\N` reads as NULL, and a
value that does not parse as the column's type is NULL. Written back: the delimiter, `\\N` for
NULL, no quoting or escaping, doubles as Java prints them.

OpenCSVSerde (`csv_serde`): every column is a string. On read a field wrapped in quotes loses
them (`""` inside becomes `"`), other fields are kept as they are (quotes inside a JSON value
stay), an empty field is an empty string and a missing one NULL. On write every non-NULL field
is wrapped in quotes with inner quotes doubled (opencsv's CSVWriter with its default escape,
the quote character); NULL is written as an empty, unquoted field. Deviation: opencsv 2.3
drops a backslash that is not followed by a quote or backslash inside quoted fields; we keep
it, and a backslash-escaped quote inside a quoted field is not supported.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from tailrace.engines.hive import complex_types
from tailrace.engines.metastore import TableSpec

# A null string no real field equals: read_csv then gives NULL only for fields missing from a
# short line, which is how short lines are counted. Hive's own null format is applied after.
NO_NULL = "\x02tailrace\x03no-null\x02"

INT_TYPES = {
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
}


class SerdeError(Exception):
    """A table definition or value the SerDe cannot handle."""


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duck_type(hive_type: str) -> str:
    """The DuckDB type a Hive column is read as."""
    t = hive_type.strip().lower()
    base = t.split("(")[0].strip()
    if base in ("string", "varchar", "char", "binary"):
        return "VARCHAR"
    if base in INT_TYPES:
        return INT_TYPES[base]
    if base == "double" or t == "double precision":
        return "DOUBLE"
    if base == "float":
        return "FLOAT"
    if base == "boolean":
        return "BOOLEAN"
    if base == "timestamp":
        return "TIMESTAMP"
    if base == "date":
        return "DATE"
    if base in ("decimal", "numeric"):
        args = t[len(base) :].strip()
        return f"DECIMAL{args}" if args else "DECIMAL(10,0)"
    try:
        complex_type = complex_types.duck_type(t, PRIMITIVES)
    except complex_types.ComplexTypeError as exc:
        raise SerdeError(str(exc)) from None
    if complex_type is not None:
        return complex_type
    raise SerdeError(
        f"column type {hive_type!r} is not supported (primitive types, and array, map and struct of them)"
    )


def parse_expr(col: str, hive_type: str, coll: str = "\x02", mapkey: str = "\x03") -> str:
    """SQL turning the raw text of a field (or NULL) into the column's value, Hive's way."""
    if complex_types.parse(hive_type) is not None:
        return complex_types.parse_expr(col, hive_type, coll, mapkey, PRIMITIVES)
    t = duck_type(hive_type)
    if t == "VARCHAR":
        base = hive_type.lower().split("(")[0].strip()
        if base in ("varchar", "char") and "(" in hive_type:
            n = int(hive_type.split("(")[1].rstrip(") "))
            return f"left({col}, {n})"
        return col
    if t in INT_TYPES.values():
        return f"__hive_parse_{t.lower()}({col})"
    if t == "BOOLEAN":
        return f"CASE lower({col}) WHEN 'true' THEN true WHEN 'false' THEN false END"
    return f"TRY_CAST({col} AS {t})"


def read_sql(
    spec: TableSpec, files: Sequence[str], partition: Sequence[tuple[str, str]] = (), *, lenient: bool = False
) -> str:
    """A SELECT over the files giving the table's columns, its partition columns, and `__short`.

    lenient: lines DuckDB cannot read (not UTF-8, longer than its line limit) are dropped and
    recorded in the `reject_errors` table instead of failing the statement.
    """
    n = len(spec.columns)
    raw = [f"c{i}" for i in range(n)]
    parts: list[str] = []
    csv = spec.row_format == "csv_serde"
    for i, (name, typ) in enumerate(spec.columns):
        value = (
            raw[i]
            if csv
            else parse_expr(
                f"NULLIF({raw[i]}, {sql_str(spec.null_format)})",
                typ,
                spec.properties.get(complex_types.COLLECTION_KEY, "\x02"),
                spec.properties.get(complex_types.MAPKEY_KEY, "\x03"),
            )
        )
        parts.append(f"{value} AS {ident(name)}")
    values = dict(partition)
    for name, typ in spec.partitioned_by:
        v = values.get(name)
        lit = "NULL" if v is None or v == "__HIVE_DEFAULT_PARTITION__" else sql_str(v)
        parts.append(f"{parse_expr(lit, typ)} AS {ident(name)}")
    parts.append(f"({raw[-1]} IS NULL) AS __short")
    if not files:
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in raw)
        return f"SELECT {', '.join(parts)} FROM (SELECT {nulls}) WHERE false"
    cols = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in raw) + "}"
    file_list = "[" + ", ".join(sql_str(f) for f in files) + "]"
    if csv:
        quote = f"quote={sql_str(spec.quote_char)}, escape={sql_str(spec.quote_char)}"
    else:
        quote = "quote='', escape=''"
    options = (
        f"delim={sql_str(spec.field_delimiter)}, {quote}, header=false, auto_detect=false, "
        f"null_padding=true, strict_mode=false, nullstr={sql_str(NO_NULL)}, columns={cols}"
    )
    if spec.skip_header_lines:
        options += f", skip={int(spec.skip_header_lines)}"
    if lenient:
        options += ", ignore_errors=true, store_rejects=true"
    return f"SELECT {', '.join(parts)} FROM read_csv({file_list}, {options})"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- writing ------------------------------------------------------------------------------


def text_of(col: str, duck: str) -> str:
    """SQL giving Hive's text for a value of DuckDB type `duck` (NULL stays NULL)."""
    d = duck.upper()
    if d == "VARCHAR":
        return col
    if d == "DOUBLE":
        return f"__hive_double_text({col})"
    if d == "FLOAT":
        return f"__hive_float_text({col})"
    if d == "BOOLEAN":
        return f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
    if d.startswith("DECIMAL"):
        s = f"CAST({col} AS VARCHAR)"
        return f"CASE WHEN contains({s}, '.') THEN rtrim(rtrim({s}, '0'), '.') ELSE {s} END"
    if d.endswith("[]"):
        return (
            f"array_to_string(list_transform({col}, lambda x: coalesce(CAST(x AS VARCHAR), '\\N')), chr(2))"
        )
    return f"CAST({col} AS VARCHAR)"


def write_expr(col: str, duck: str, hive_type: str, *, csv: bool, spec: TableSpec | None = None) -> str:
    """Convert a result column to the target column's type (Hive's implicit insert conversion),
    then to the text Hive writes."""
    d = duck.upper()
    if csv:
        return text_of(col, d)
    if complex_types.parse(hive_type) is not None:
        props = spec.properties if spec is not None else {}
        return complex_types.text_expr(
            f"TRY_CAST({col} AS {duck_type(hive_type)})",
            hive_type,
            PRIMITIVES,
            props.get(complex_types.COLLECTION_KEY, "\x02"),
            props.get(complex_types.MAPKEY_KEY, "\x03"),
        )
    target = duck_type(hive_type)
    if target == "VARCHAR":
        return parse_expr(text_of(col, d), hive_type) if "(" in hive_type else text_of(col, d)
    if target in INT_TYPES.values():
        if d == "VARCHAR":
            return f"__hive_parse_{target.lower()}({col})"
        if d in ("DOUBLE", "FLOAT") or d.startswith("DECIMAL"):
            return f"TRY_CAST(trunc({col}) AS {target})"
        if d == "BOOLEAN":
            return f"CAST({col} AS {target})"
        return f"TRY_CAST({col} AS {target})"
    if target in ("DOUBLE", "FLOAT"):
        value = f"TRY_CAST({col} AS {target})"
        return text_of(value, target)
    if target == "BOOLEAN":
        if d == "VARCHAR":
            return f"CASE WHEN {col} IS NULL THEN NULL WHEN length({col}) > 0 THEN 'true' ELSE 'false' END"
        return text_of(f"TRY_CAST({col} AS BOOLEAN)", "BOOLEAN")
    return text_of(f"TRY_CAST({col} AS {target})", target)


def copy_options(spec: TableSpec, *, gzip: bool) -> str:
    opts = [
        "FORMAT csv",
        "HEADER false",
        f"DELIMITER {sql_str(spec.field_delimiter)}",
    ]
    if spec.row_format == "csv_serde":
        q = sql_str(spec.quote_char)
        opts += [f"QUOTE {q}", f"ESCAPE {q}", "FORCE_QUOTE *", "NULLSTR ''"]
    else:
        opts += ["QUOTE ''", "ESCAPE ''", f"NULLSTR {sql_str(spec.null_format)}"]
    opts.append("COMPRESSION gzip" if gzip else "COMPRESSION none")
    return "(" + ", ".join(opts) + ")"


# --- Java's number printing ------------------------------------------------------------------


def _java_format(digits: str, exponent: int, negative: bool) -> str:
    """Double.toString's layout for the shortest decimal digits d1d2... x 10^exponent."""
    sign = "-" if negative else ""
    if -3 <= exponent < 7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            frac = digits[exponent + 1 :] or "0"
        else:
            whole, frac = "0", "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{frac}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _from_repr(text: str, value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, digits_t, exp = Decimal(text).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    lead = len("".join(map(str, digits_t)).lstrip("0"))
    stripped = "".join(map(str, digits_t)).lstrip("0")
    exponent = len(stripped) + int(exp) - 1 if lead else 0
    return _java_format(digits.lstrip("0") or "0", exponent, bool(sign))


def java_double(value: float | None) -> str | None:
    """Java's Double.toString (shortest digits; 1.0E7 style outside [1e-3, 1e7))."""
    if value is None:
        return None
    return _from_repr(repr(float(value)), float(value))


def java_float(value: float | None) -> str | None:
    """Java's Float.toString: the shortest digits that read back as the same float."""
    if value is None:
        return None
    f = struct.unpack("f", struct.pack("f", value))[0]
    if math.isnan(f) or math.isinf(f) or f == 0:
        return _from_repr("0", f)
    for p in range(1, 10):
        text = f"{f:.{p}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f:
            return _from_repr(text, f)
    return _from_repr(repr(f), f)


def hive_text(value: Any) -> str:
    """A Python value from DuckDB as the Hive CLI prints it in a SELECT (NULL as 'NULL')."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value) or "NULL"
    if isinstance(value, Decimal):
        # The CLI prints a decimal with its type's scale (Hive 2+): CAST(1.5 AS decimal(4,2)) is 1.50.
        return format(value, "f")
    if isinstance(value, list):
        return "[" + ",".join(_json_like(v) for v in value) + "]"
    if isinstance(value, dict):
        # Structs and maps print as JSON-like text: {"f1":1,"f2":"x"}.
        return "{" + ",".join(f"{_json_like(k)}:{_json_like(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + (f".{value.microsecond:06d}".rstrip("0") if value.microsecond else "")
    return str(value)


def _json_like(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, date):
        # SerDeUtils.buildJSONString quotes dates and timestamps inside a collection.
        return '"' + hive_text(value) + '"'
    if isinstance(value, Decimal):
        # ... and prints a decimal as HiveDecimal.toString, trailing zeros trimmed.
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    return hive_text(value)


_MACROS = [
    # Java's Double.toString from DuckDB's shortest text: digits and exponent, then layout.
    "CREATE OR REPLACE MACRO __jd_digits(s) AS coalesce(nullif(rtrim(ltrim(replace(CASE WHEN "
    "contains(s, 'e') THEN split_part(s, 'e', 1) ELSE s END, '.', ''), '0'), '0'), ''), '0')",
    "CREATE OR REPLACE MACRO __jd_exp(s) AS CASE WHEN contains(s, 'e') THEN CAST(split_part(s, 'e', 2) AS INTEGER) "
    "WHEN split_part(s, '.', 1) <> '0' THEN length(split_part(s, '.', 1)) - 1 "
    "ELSE -(length(split_part(s, '.', 2)) - length(ltrim(split_part(s, '.', 2), '0')) + 1) END",
    "CREATE OR REPLACE MACRO __jd_fmt(d, e) AS CASE "
    "WHEN e >= 0 AND e < 7 THEN rpad(left(d, CAST(e + 1 AS INTEGER)), CAST(e + 1 AS INTEGER), '0') || '.' || coalesce(nullif(substr(d, e + 2), ''), '0') "
    "WHEN e < 0 AND e >= -3 THEN '0.' || repeat('0', CAST(-e - 1 AS BIGINT)) || d "
    "ELSE left(d, 1) || '.' || coalesce(nullif(substr(d, 2), ''), '0') || 'E' || CAST(e AS VARCHAR) END",
    *(
        f"CREATE OR REPLACE MACRO __hive_{name}_text(x) AS CASE WHEN x IS NULL THEN NULL "
        "WHEN isnan(x) THEN 'NaN' WHEN isinf(x) THEN CASE WHEN x > 0 THEN 'Infinity' ELSE '-Infinity' END "
        "WHEN x = 0 THEN CASE WHEN CAST(x AS VARCHAR) LIKE '-%' THEN '-0.0' ELSE '0.0' END "
        "ELSE CASE WHEN x < 0 THEN '-' ELSE '' END || "
        "__jd_fmt(__jd_digits(CAST(abs(x) AS VARCHAR)), __jd_exp(CAST(abs(x) AS VARCHAR))) END"
        for name in ("double", "float")
    ),
    *(
        f"CREATE OR REPLACE MACRO __hive_parse_{t.lower()}(s) AS "
        f"CASE WHEN regexp_full_match(s, '[+-]?[0-9]+') THEN TRY_CAST(s AS {t}) "
        # LazyInteger/LazyLong allow a fraction and truncate it ('12.5' is 12, '.5' and '.' 0).
        f"WHEN regexp_full_match(s, '[+-]?[0-9]*[.][0-9]*') THEN TRY_CAST(CASE WHEN "
        f"regexp_full_match(split_part(s, '.', 1), '[+-]?') THEN '0' ELSE split_part(s, '.', 1) END AS {t}) END"
        for t in sorted(set(INT_TYPES.values()))
    ),
    # UDFSubstr.makeIndex: pos>0 from the start (1-based), pos<0 from the end, pos 0 is the
    # first character; |pos| past the end or len<=0 gives ''.
    "CREATE OR REPLACE MACRO __hive_substr(s, p, l) AS CASE "
    "WHEN s IS NULL OR p IS NULL OR l IS NULL THEN NULL "
    "WHEN l <= 0 OR abs(p) > length(CAST(s AS VARCHAR)) THEN '' "
    "ELSE substring(CAST(s AS VARCHAR), CASE WHEN p > 0 THEN p WHEN p < 0 THEN "
    "length(CAST(s AS VARCHAR)) + p + 1 ELSE 1 END, l) END",
    # Java's narrowing casts, as UDFToInteger & co. apply them: a double is truncated and
    # clamped to the int range (long for bigint), then an integer keeps its low bits
    # (CAST(300 AS TINYINT) is 44).
    "CREATE OR REPLACE MACRO __hive_d2l(d, lo, hi) AS CASE WHEN isnan(d) THEN 0 WHEN d >= hi THEN "
    "CAST(hi AS BIGINT) WHEN d <= lo THEN CAST(lo AS BIGINT) ELSE CAST(trunc(d) AS BIGINT) END",
    "CREATE OR REPLACE MACRO __hive_wrap(v, bits) AS CASE WHEN bits >= 64 THEN v "
    "WHEN (v & ((1::BIGINT << bits) - 1)) >= (1::BIGINT << (bits - 1)) "
    "THEN (v & ((1::BIGINT << bits) - 1)) - (1::BIGINT << bits) ELSE v & ((1::BIGINT << bits) - 1) END",
    *(
        f"CREATE OR REPLACE MACRO __hive_to_{name}(x) AS CASE "
        f"WHEN typeof(x) = 'VARCHAR' THEN __hive_parse_{t.lower()}(CAST(x AS VARCHAR)) "
        f"WHEN typeof(x) = 'TIMESTAMP' THEN TRY_CAST(epoch(TRY_CAST(x AS TIMESTAMP)) AS {t}) "
        f"WHEN typeof(x) IN ('DOUBLE', 'FLOAT') OR typeof(x) LIKE 'DECIMAL%' "
        f"THEN CAST(__hive_wrap(__hive_d2l(TRY_CAST(x AS DOUBLE), {lo}, {hi}), {bits}) AS {t}) "
        f"WHEN typeof(x) IN ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT') "
        f"THEN CAST(__hive_wrap(TRY_CAST(x AS BIGINT), {bits}) AS {t}) "
        f"ELSE TRY_CAST(x AS {t}) END"
        for name, t, bits, lo, hi in (
            ("bigint", "BIGINT", 64, "-9223372036854775808.0", "9223372036854775807.0"),
            ("int", "INTEGER", 32, "-2147483648.0", "2147483647.0"),
            ("smallint", "SMALLINT", 16, "-2147483648.0", "2147483647.0"),
            ("tinyint", "TINYINT", 8, "-2147483648.0", "2147483647.0"),
        )
    ),
    "CREATE OR REPLACE MACRO __hive_to_string(x) AS CASE "
    "WHEN typeof(x) = 'DOUBLE' THEN __hive_double_text(TRY_CAST(x AS DOUBLE)) "
    "WHEN typeof(x) = 'FLOAT' THEN __hive_float_text(TRY_CAST(x AS FLOAT)) "
    "WHEN typeof(x) = 'BOOLEAN' THEN CASE WHEN TRY_CAST(x AS BOOLEAN) THEN 'true' "
    "WHEN NOT TRY_CAST(x AS BOOLEAN) THEN 'false' END "
    "ELSE CAST(x AS VARCHAR) END",
    # CAST(boolean AS STRING) is 'TRUE'/'FALSE' in Hive (its string converter); printf's %s
    # and printing keep Java's 'true'.
    "CREATE OR REPLACE MACRO __hive_cast_string(x) AS CASE "
    "WHEN typeof(x) = 'BOOLEAN' THEN CASE WHEN TRY_CAST(x AS BOOLEAN) THEN 'TRUE' "
    "WHEN NOT TRY_CAST(x AS BOOLEAN) THEN 'FALSE' END "
    "ELSE __hive_to_string(x) END",
    # Hive's date functions read the 'yyyy-MM-dd' prefix of a string (SimpleDateFormat.parse);
    # times read 'yyyy-MM-dd HH:mm:ss' (an ISO 'T' is accepted, an offset is ignored).
    "CREATE OR REPLACE MACRO __hive_date(s) AS TRY_CAST(left(CAST(s AS VARCHAR), 10) AS DATE)",
    "CREATE OR REPLACE MACRO __hive_ts(s) AS TRY_CAST(CASE WHEN regexp_matches(CAST(s AS VARCHAR), "
    "'^\\d{4}-\\d\\d-\\d\\d[ T]\\d\\d:\\d\\d:\\d\\d\\.\\d') "
    "THEN regexp_extract(replace(CAST(s AS VARCHAR), 'T', ' '), '^[^.]*\\.\\d{1,9}') "
    "ELSE left(replace(CAST(s AS VARCHAR), 'T', ' '), 19) END AS TIMESTAMP)",
    # hour('13:14:15') reads a time of day alone too.
    "CREATE OR REPLACE MACRO __hive_time(s) AS CASE WHEN regexp_full_match(CAST(s AS VARCHAR), "
    "'\\d{1,2}:\\d\\d:\\d\\d(\\.\\d*)?') THEN TRY_CAST('1970-01-01 ' || CAST(s AS VARCHAR) AS TIMESTAMP) "
    "ELSE __hive_ts(s) END",
    # TABLESAMPLE(BUCKET x OUT OF y ON col): Hive's hash (an int is itself, a string its
    # String.hashCode, NULL 0), non-negative, modulo y.
    "CREATE OR REPLACE MACRO __hive_bucket(x, y) AS CASE WHEN x IS NULL THEN 0 "
    "WHEN typeof(x) = 'VARCHAR' THEN (__hive_string_hash(CAST(x AS VARCHAR)) & 2147483647) % y "
    "ELSE (TRY_CAST(x AS BIGINT) & 2147483647) % y END",
    "CREATE OR REPLACE MACRO __hive_hash(x) AS CASE WHEN x IS NULL THEN 0 "
    "WHEN typeof(x) = 'VARCHAR' THEN __hive_string_hash(CAST(x AS VARCHAR)) "
    "WHEN typeof(x) = 'BOOLEAN' THEN CASE WHEN TRY_CAST(x AS BOOLEAN) THEN 1 ELSE 0 END "
    "ELSE TRY_CAST(x AS BIGINT) END",
    "CREATE OR REPLACE MACRO __hive_initcap(s) AS array_to_string(list_transform("
    "string_split(s, ' '), lambda w: upper(left(w, 1)) || lower(substr(w, 2))), ' ')",
    "CREATE OR REPLACE MACRO __hive_to_boolean(x) AS CASE "
    "WHEN typeof(x) = 'VARCHAR' THEN CASE WHEN x IS NULL THEN NULL ELSE length(CAST(x AS VARCHAR)) > 0 END "
    "ELSE TRY_CAST(x AS BOOLEAN) END",
]


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the Hive macros on a connection (udfs.ensure adds Python functions as needed)."""
    for sql in _MACROS:
        con.execute(sql)


class _SerdePrimitives:
    """The primitive SerDe as complex_types needs it (passed in, so neither imports the other)."""

    duck_type = staticmethod(duck_type)
    parse_expr = staticmethod(parse_expr)
    sql_str = staticmethod(sql_str)
    text_of = staticmethod(text_of)


PRIMITIVES = _SerdePrimitives()
