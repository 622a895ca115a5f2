"""array<...>, map<...> and struct<...> columns of LazySimpleSerDe text tables.

Inside a field, collection items are split on the collection delimiter (default \\x02, `COLLECTION
ITEMS TERMINATED BY`) and a map entry's key from its value on the map-key delimiter (default
\\x03, `MAP KEYS TERMINATED BY`); struct fields are collection items in declaration order. One
level of nesting is read (an element that is itself a collection is refused at CREATE TABLE).
"""

from __future__ import annotations

from typing import Protocol

COLLECTION_KEY = "colelction.delim"  # sic: the property name Hive itself uses
MAPKEY_KEY = "mapkey.delim"


class ComplexTypeError(ValueError):
    """A complex type the SerDe cannot read."""


def split_top(text: str) -> list[str]:
    """Split 'a, map<b,c>, d' at the commas that are not inside <...>."""
    out: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse(hive_type: str) -> tuple[str, list[tuple[str, str]]] | None:
    """('array'|'map'|'struct', [(name, element type)]) for a complex type, else None."""
    t = hive_type.strip().lower()
    for kind in ("array", "map", "struct"):
        if t.startswith(kind + "<") and t.endswith(">"):
            inner = split_top(t[len(kind) + 1 : -1])
            if kind == "array" and len(inner) == 1:
                return kind, [("", inner[0])]
            if kind == "map" and len(inner) == 2:
                return kind, [("key", inner[0]), ("value", inner[1])]
            if kind == "struct":
                fields = []
                for f in inner:
                    name, sep, typ = f.partition(":")
                    if not sep:
                        raise ComplexTypeError(f"cannot read struct field '{f}' (expected name:type)")
                    fields.append((name.strip().strip("`"), typ.strip()))
                return kind, fields
            raise ComplexTypeError(f"cannot read the type '{hive_type}'")
    return None


def _ident(name: str) -> str:
    # A struct field's name is the script author's text: quoted, never SQL.
    return '"' + name.replace('"', '""') + '"'


class Primitives(Protocol):
    """What complex types need of the primitive SerDe (tailrace.engines.hive.serde passes itself,
    so the two modules do not import each other)."""

    def duck_type(self, hive_type: str) -> str: ...
    def parse_expr(self, col: str, hive_type: str) -> str: ...
    def sql_str(self, text: str) -> str: ...
    def text_of(self, col: str, duck: str) -> str: ...


def duck_type(hive_type: str, prim: Primitives) -> str | None:
    primitive = prim.duck_type

    found = parse(hive_type)
    if found is None:
        return None
    kind, parts = found
    for _, typ in parts:
        if parse(typ) is not None:
            raise ComplexTypeError(f"column type {hive_type!r}: nested collections are not supported")
    if kind == "array":
        return primitive(parts[0][1]) + "[]"
    if kind == "map":
        return f"MAP({primitive(parts[0][1])}, {primitive(parts[1][1])})"
    return "STRUCT(" + ", ".join(f"{_ident(n)} {primitive(t)}" for n, t in parts) + ")"


def parse_expr(col: str, hive_type: str, coll: str, mapkey: str, prim: Primitives) -> str:
    """SQL reading the text of a complex field (NULL stays NULL; '\\N' items are NULL)."""
    primitive, sql_str = prim.parse_expr, prim.sql_str

    found = parse(hive_type)
    assert found is not None
    kind, parts = found
    d, k = sql_str(coll), sql_str(mapkey)
    if kind == "array":
        item = primitive("NULLIF(__e, '\\N')", parts[0][1])
        body = f"list_transform(string_split({col}, {d}), lambda __e: {item})"
        return f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} = '' THEN [] ELSE {body} END"
    if kind == "map":
        key = primitive(f"split_part(__e, {k}, 1)", parts[0][1])
        value = primitive(
            f"NULLIF(CASE WHEN contains(__e, {k}) THEN substr(__e, strpos(__e, {k}) + 1) END, '\\N')",
            parts[1][1],
        )
        body = (
            f"map_from_entries(list_transform(string_split({col}, {d}), "
            f"lambda __e: {{'key': {key}, 'value': {value}}}))"
        )
        return f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} = '' THEN map() ELSE {body} END"
    items = f"string_split({col}, {d})"
    values = [
        primitive(f"NULLIF(list_extract({items}, {i + 1}), '\\N')", typ) for i, (_, typ) in enumerate(parts)
    ]
    fields = ", ".join(f"{_ident(n)} := {v}" for (n, _), v in zip(parts, values, strict=True))
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE struct_pack({fields}) END"


def text_expr(col: str, hive_type: str, prim: Primitives, coll: str = "\x02", mapkey: str = "\x03") -> str:
    """SQL writing a complex value as LazySimpleSerDe text (NULL items as \\N)."""
    primitive, sql_str, text_of = prim.duck_type, prim.sql_str, prim.text_of

    found = parse(hive_type)
    assert found is not None
    kind, parts = found
    d, k = sql_str(coll), sql_str(mapkey)

    def item(expr: str, typ: str) -> str:
        return f"coalesce({text_of(expr, primitive(typ))}, '\\N')"

    if kind == "array":
        return f"array_to_string(list_transform({col}, lambda __e: {item('__e', parts[0][1])}), {d})"
    if kind == "map":
        pair = f"{item('__e.key', parts[0][1])} || {k} || {item('__e.value', parts[1][1])}"
        return f"array_to_string(list_transform(map_entries({col}), lambda __e: {pair}), {d})"
    fields = ", ".join(item(f"{col}.{_ident(n)}", t) for n, t in parts)
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE array_to_string([{fields}], {d}) END"
