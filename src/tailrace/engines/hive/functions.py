"""Hive built-in functions as DuckDB expressions (the translator calls `rewrite` on every node).

sqlglot parses most Hive calls into typed nodes whose DuckDB spelling differs from Hive's
meaning (trunc, next_day, percentile, date_format ...) and leaves the rest as Anonymous. Both
kinds are mapped here to DuckDB SQL or to the Python functions of `udfs`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from tailrace.engines.hive import javatime, serde, udfs_stats
from tailrace.engines.hive.function_table import BY_NAME
from tailrace.engines.hive.translate_errors import TranslateError

_DUCK = Dialect.get_or_raise("duckdb")

# What the translator's coercions know of the functions below: Hive types that are numbers,
# and DuckDB calls that return numbers or strings.
NUMERIC_TYPES = {"tinyint", "smallint", "int", "integer", "bigint", "double", "float", "decimal"}
NUMBER_FUNCS = {
    "__hive_to_bigint",
    "__hive_to_int",
    "__hive_to_smallint",
    "__hive_to_tinyint",
    "__hive_find_in_set",
    "__hive_crc32",
    "__hive_months_between",
}
STRING_FUNCS = {
    "substring",
    "__hive_substr",
    "__hive_to_string",
    "__hive_cast_string",
    "__hive_json_path",
    "json_extract_string",
    "__hive_date_format",
    "__hive_parse_url",
    "__hive_parse_url_key",
    "replace",
    "__hive_last_day",
    "__hive_next_day",
    "__hive_add_months",
    "__hive_trunc",
}

_SIMPLE_JSON_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_]*)+")


@functools.lru_cache(maxsize=256)
def _parsed(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read="duckdb")


def template(sql: str, *args: exp.Expr) -> exp.Expr:
    """DuckDB SQL with `_0`, `_1`... standing for the given argument expressions."""

    def put(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and not n.table and re.fullmatch(r"_\d", n.name):
            return args[int(n.name[1])].copy()
        return n

    return _parsed(sql).copy().transform(put)


def _str(e: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this="__hive_to_string", expressions=[e])


# Typed sqlglot nodes -> DuckDB template over the node's arguments (in arg_types order).
_BY_TYPE: dict[type[exp.Expr], Callable[[exp.Expr], exp.Expr | None]] = {}


def _on(*kinds: type[exp.Expr]) -> Callable[[Callable[[exp.Expr], exp.Expr | None]], None]:
    def deco(fn: Callable[[exp.Expr], exp.Expr | None]) -> None:
        for k in kinds:
            _BY_TYPE[k] = fn

    return deco


@_on(exp.ParseUrl)
def _parse_url(n: exp.Expr) -> exp.Expr:
    key = n.args.get("key") or n.args.get("query_key")
    args = [
        a for a in (n.this, n.args.get("part_to_extract") or n.args.get("expression"), key) if a is not None
    ]
    if len(args) == 3:
        return template("__hive_parse_url_key(_0, _1, _2)", *args)
    return template("__hive_parse_url(_0, _1)", *args)


def _text(e: exp.Expr) -> exp.Expr:
    """A string argument as Hive reads it: numbers and booleans become their text (a cast of
    a string is free in DuckDB, so the type need not be known here)."""
    if isinstance(e, exp.Literal) and e.is_string:
        return e
    return exp.Cast(this=e, to=exp.DataType.build("VARCHAR"))


@_on(exp.StrPosition)
def _instr_locate(n: exp.Expr) -> exp.Expr:
    """instr(s, sub) and locate(sub, s[, pos]): 1-based, 0 when absent; a position that is
    not a number of at least 1 finds nothing (0)."""
    s, sub = _text(n.this), _text(n.args["substr"])
    pos = n.args.get("position")
    if pos is None:
        return template("strpos(_0, _1)", s, sub)
    return template(
        "CASE WHEN _0 IS NULL OR _1 IS NULL THEN NULL "
        "WHEN coalesce(TRY_CAST(_2 AS BIGINT), 0) < 1 THEN 0 "
        "WHEN strpos(substr(_0, TRY_CAST(_2 AS BIGINT)), _1) = 0 THEN 0 "
        "ELSE strpos(substr(_0, TRY_CAST(_2 AS BIGINT)), _1) + TRY_CAST(_2 AS BIGINT) - 1 END",
        s,
        sub,
        pos,
    )


@_on(exp.StrToMap)
def _str_to_map(n: exp.Expr) -> exp.Expr:
    pair = n.args.get("pair_delim") or exp.Literal.string(",")
    kv = n.args.get("key_value_delim") or exp.Literal.string(":")
    return template("__hive_str_to_map(_0, _1, _2)", n.this, pair, kv)


@_on(exp.Soundex)
def _soundex(n: exp.Expr) -> exp.Expr:
    return template("__hive_soundex(_0)", n.this)


@_on(exp.LastDay)
def _last_day(n: exp.Expr) -> exp.Expr:
    return template("__hive_last_day(CAST(_0 AS VARCHAR))", n.this)


@_on(exp.NextDay)
def _next_day(n: exp.Expr) -> exp.Expr:
    return template("__hive_next_day(CAST(_0 AS VARCHAR), _1)", n.this, n.expression)


@_on(exp.MonthsBetween)
def _months_between(n: exp.Expr) -> exp.Expr:
    return template("__hive_months_between(CAST(_0 AS VARCHAR), CAST(_1 AS VARCHAR))", n.this, n.expression)


@_on(exp.AddMonths)
def _add_months(n: exp.Expr) -> exp.Expr:
    return template("__hive_add_months(CAST(_0 AS VARCHAR), CAST(_1 AS BIGINT))", n.this, n.expression)


@_on(exp.TimestampTrunc, exp.DateTrunc)
def _trunc(n: exp.Expr) -> exp.Expr:
    unit = n.args.get("unit")
    unit_sql = (
        exp.Literal.string(unit.name if isinstance(unit, exp.Var) else unit.this)
        if unit is not None
        else exp.Literal.string("")
    )
    if isinstance(unit, exp.Literal):
        unit_sql = unit
    return template("__hive_trunc(CAST(_0 AS VARCHAR), _1)", n.this, unit_sql)


@_on(exp.Quantile)
def _percentile(n: exp.Expr) -> exp.Expr:
    return template("quantile_cont(CAST(_0 AS DOUBLE), _1)", n.this, n.args["quantile"])


@_on(exp.ApproxQuantile)
def _percentile_approx(n: exp.Expr) -> exp.Expr:
    # Hive's histogram (10000 bins unless given) and its interpolation between bin centres.
    q = n.args["quantile"]
    bins = n.args.get("accuracy") or n.args.get("weight") or exp.Literal.number(10000)
    call = "__hive_percentile_approx(list(CAST(_0 AS DOUBLE)), CAST({} AS DOUBLE[]), CAST(_2 AS BIGINT))"
    if isinstance(q, exp.Array):
        return template(call.format("_1"), n.this, q, bins)
    return template(call.format("[_1]") + "[1]", n.this, q, bins)


@_on(exp.Variance)
def _variance(n: exp.Expr) -> exp.Expr:
    return template("var_samp(CAST(_0 AS DOUBLE))", n.this)


@_on(exp.TimeToStr)
def _date_format(n: exp.Expr) -> exp.Expr:
    return template("__hive_date_format(CAST(_0 AS VARCHAR), _1)", n.this, n.args["format"])


@_on(exp.Initcap)
def _initcap(n: exp.Expr) -> exp.Expr:
    return template("__hive_initcap(_0)", n.this)


@_on(exp.Pi)
def _pi(n: exp.Expr) -> exp.Expr:
    return template("pi()")


@_on(exp.Unhex)
def _unhex(n: exp.Expr) -> exp.Expr:
    # UDFUnhex: an odd length gets a leading 0; a character that is not hex gives NULL.
    return template(
        "unhex(CASE WHEN regexp_full_match(_0, '[0-9a-fA-F]*') THEN "
        "CASE WHEN length(_0) % 2 = 1 THEN '0' || _0 ELSE _0 END END)",
        n.this,
    )


@_on(exp.Ascii)
def _ascii(n: exp.Expr) -> exp.Expr:
    # UDFAscii: the first UTF-8 byte as a signed Java byte (ascii('é') is -61).
    return template(
        "CASE WHEN ascii(_0) < 128 THEN ascii(_0) WHEN ascii(_0) < 2048 THEN (192 | (ascii(_0) >> 6)) - 256 "
        "WHEN ascii(_0) < 65536 THEN (224 | (ascii(_0) >> 12)) - 256 ELSE (240 | (ascii(_0) >> 18)) - 256 END",
        n.this,
    )


@_on(exp.Hex)
def _hex(n: exp.Expr) -> exp.Expr:
    return template("upper(hex(_0))", n.this)


@_on(exp.Log)
def _log(n: exp.Expr) -> exp.Expr:
    base = n.this
    if n.expression is None:
        return template("CASE WHEN _0 > 0 THEN ln(CAST(_0 AS DOUBLE)) END", base)
    if isinstance(base, exp.Literal) and base.this == "10":
        return template("CASE WHEN _0 > 0 THEN log10(CAST(_0 AS DOUBLE)) END", n.expression)
    return template(
        "CASE WHEN _0 > 0 AND _1 > 0 THEN ln(CAST(_1 AS DOUBLE)) / ln(CAST(_0 AS DOUBLE)) END",
        base,
        n.expression,
    )


@_on(exp.Round)
def _round(n: exp.Expr) -> exp.Expr:
    # Java's HALF_UP (away from zero); a double stays a double.
    places = n.args.get("decimals") or exp.Literal.number(0)
    if isinstance(places, exp.Literal) and not places.is_string:
        # BigDecimal.valueOf(d).setScale(n, HALF_UP): the double's shortest decimal text is
        # rounded, so round(1.005, 2) is 1.01 (binary rounding gives 1.0).
        return template(
            "coalesce(CAST(round(TRY_CAST(CAST(CAST(_0 AS DOUBLE) AS VARCHAR) AS DECIMAL(38, 18)), _1) "
            "AS DOUBLE), round(CAST(_0 AS DOUBLE), _1))",
            n.this,
            places,
        )
    return template("round(CAST(_0 AS DOUBLE), _1)", n.this, places)


@_on(exp.Pow)
def _pow(n: exp.Expr) -> exp.Expr:
    return template("pow(CAST(_0 AS DOUBLE), CAST(_1 AS DOUBLE))", n.this, n.expression)


@_on(exp.Exp)
def _exp(n: exp.Expr) -> exp.Expr:
    return template("exp(CAST(_0 AS DOUBLE))", n.this)


@_on(exp.Sqrt)
def _sqrt(n: exp.Expr) -> exp.Expr:
    # Hive gives NULL outside the domain (Java would give NaN).
    return template("CASE WHEN _0 >= 0 THEN sqrt(CAST(_0 AS DOUBLE)) END", n.this)


@_on(exp.Cbrt)
def _cbrt(n: exp.Expr) -> exp.Expr:
    # Java's Math.cbrt is exact on perfect cubes (DuckDB's pow-based cbrt(27.0) is 3.0000000000000004).
    return template(
        "CASE WHEN round(cbrt(_0)) ^ 3 = _0 THEN round(cbrt(_0)) ELSE cbrt(_0) END",
        exp.cast(n.this, "double"),
    )


@_on(exp.Ln)
def _ln(n: exp.Expr) -> exp.Expr:
    return template("CASE WHEN _0 > 0 THEN ln(CAST(_0 AS DOUBLE)) END", n.this)


@_on(exp.IntDiv)
def _div(n: exp.Expr) -> exp.Expr:
    # a DIV 0 and a % 0 are NULL in Hive.
    return template("CAST(trunc(_0 / nullif(_1, 0)) AS BIGINT)", n.this, n.expression)


@_on(exp.Sign)
def _sign(n: exp.Expr) -> exp.Expr:
    return template("CAST(sign(CAST(_0 AS DOUBLE)) AS DOUBLE)", n.this)


@_on(exp.Floor, exp.Ceil)
def _floor(n: exp.Expr) -> exp.Expr:
    name = "floor" if isinstance(n, exp.Floor) else "ceil"
    return template(f"CAST({name}(CAST(_0 AS DOUBLE)) AS BIGINT)", n.this)


@_on(exp.SHA2)
def _sha2(n: exp.Expr) -> exp.Expr | None:
    length = n.args.get("length")
    bits = length.this if isinstance(length, exp.Literal) else "256"
    if bits in ("256", "0"):
        return template("sha256(_0)", n.this)
    return template("__hive_sha2(CAST(_0 AS VARCHAR), CAST(_1 AS BIGINT))", n.this, length or exp.null())


@_on(exp.Stddev)
def _stddev(n: exp.Expr) -> exp.Expr:
    # Hive's stddev is the population standard deviation.
    return template("stddev_pop(CAST(_0 AS DOUBLE))", n.this)


# Functions that need a JVM, Hive's own files or state tailrace does not have.
REFUSED = {
    "java_method": "it calls Java methods",
    "reflect": "it calls Java methods",
    "reflect2": "it calls Java methods",
    "in_file": "it reads files from the Hive node",
    "compute_stats": "it is Hive-internal",
    "current_user": "there is no Hive user",
    "version": "there is no Hive version to report",
    "surrogate_key": "it needs Hive's write ids",
    "logged_in_user": "there is no Hive user",
}


# Hive functions sqlglot leaves as Anonymous and the translator handles elsewhere.
_OTHER_HIVE = {"json_tuple", "parse_url_tuple"}


def check_names(query: exp.Expr) -> None:
    """Refuse what Hive does not have before anything reaches DuckDB: a function Hive does not
    know (DuckDB's own, such as current_setting, would run otherwise) and a table function in
    FROM (DuckDB's read_text('/etc/passwd') would read the server's files)."""
    for table in query.find_all(exp.Table):
        if table.this is not None and not isinstance(table.this, exp.Identifier):
            raise TranslateError(
                "a function in FROM is not a table (use LATERAL VIEW for table functions)", table
            )
    for node in query.find_all(exp.Anonymous):
        if node.find_ancestor(exp.Hint) is not None:
            continue  # /*+ MAPJOIN(b) */ names tables, not a function
        name = node.name.lower()
        known = BY_NAME.keys() | REFUSED.keys() | _OTHER_HIVE | XPATH.keys() | udfs_stats.AGGREGATES.keys()
        if name not in known:
            raise TranslateError(f"Invalid function '{node.name}'", node)


def rewrite(node: exp.Expr) -> exp.Expr | None:
    """The DuckDB form of a Hive function call, or None when the node needs no change."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in REFUSED:
            raise TranslateError(f"function {name} is not supported by tailrace hive: {REFUSED[name]}", node)
        if name in XPATH:
            return _xpath(name, list(node.expressions), node)
        if name in udfs_stats.AGGREGATES:
            return udfs_stats.call(name, list(node.expressions), node, template)
        spec = BY_NAME.get(name)
        if spec is None:
            return None
        counts, sql = spec
        args = list(node.expressions)
        if name == "field":
            return _field(args)
        if name == "binary" and len(args) == 1:
            return exp.cast(args[0], "binary")
        if name == "index" and len(args) == 2:
            # Hive's index(a, i) is a[i] (arrays from 0, maps by key).
            return exp.Bracket(this=args[0], expressions=[args[1]])
        if name == "printf":
            if not args:
                raise TranslateError("printf needs a format", node)
            rest = exp.Array(expressions=[_str(a) for a in args[1:]])
            return template("__hive_printf(_0, _1)", args[0], rest)
        if name == "elt":
            if len(args) < 2:
                raise TranslateError("elt needs an index and at least one string", node)
            return template("list_extract(_1, _0)", args[0], exp.Array(expressions=args[1:]))
        if name == "get_json_object":
            return _json(args, node)
        if (
            name == "format_number"
            and len(args) == 2
            and isinstance(args[1], exp.Literal)
            and args[1].is_string
        ):
            return template("__hive_format_pattern(CAST(_0 AS DOUBLE), _1)", *args)
        if counts and len(args) not in counts:
            raise TranslateError(
                f"{name} takes {' or '.join(map(str, counts))} arguments, not {len(args)}", node
            )
        if name == "mask" and len(args) == 4:
            sql = "__hive_mask(CAST(_0 AS VARCHAR), _1, _2, _3)"
        if name == "bround" and len(args) == 2:
            sql = "__hive_bround(CAST(_0 AS DOUBLE), CAST(_1 AS BIGINT))"
        if name.startswith("mask_") and name != "mask_hash" and len(args) == 2:
            sql = sql.replace(", 4)", ", _1)")
        return template(sql, *args)
    fn = _BY_TYPE.get(type(node))
    return fn(node) if fn is not None else None


# Hive's xpath UDFs -> the Python function that answers them (tailrace.engines.hive.xpath).
XPATH = {
    "xpath": "__hive_xpath",
    "xpath_string": "__hive_xpath_string",
    "xpath_boolean": "__hive_xpath_boolean",
    "xpath_int": "__hive_xpath_int",
    "xpath_long": "__hive_xpath_long",
    "xpath_short": "__hive_xpath_short",
    "xpath_double": "__hive_xpath_double",
    "xpath_number": "__hive_xpath_double",
    "xpath_float": "__hive_xpath_float",
}


def _xpath(name: str, args: list[exp.Expr], node: exp.Expr) -> exp.Expr:
    if len(args) != 2:
        raise TranslateError(f"{name} takes 2 arguments, not {len(args)}", node)
    path = args[1]
    if isinstance(path, exp.Literal) and path.is_string:
        from tailrace.engines.hive import xpath  # (ElementTree: only for a script that uses XPath)

        try:
            xpath.compile_path(path.this)
        except xpath.XPathError as e:
            raise TranslateError(f"{name}: {e} (tailrace hive runs an XPath 1.0 subset)", path) from None
    return template(f"{XPATH[name]}(CAST(_0 AS VARCHAR), CAST(_1 AS VARCHAR))", *args)


def _field(args: list[exp.Expr]) -> exp.Expr:
    if not args:
        raise TranslateError("field needs at least one argument")
    first = args[0]
    cases = " ".join(f"WHEN _0 = _{i + 1} THEN {i + 1}" for i in range(min(len(args) - 1, 9)))
    return template(f"CASE WHEN _0 IS NULL THEN 0 {cases} ELSE 0 END", first, *args[1:10])


def _json(args: list[exp.Expr], node: exp.Expr) -> exp.Expr:
    if len(args) != 2:
        raise TranslateError(f"get_json_object takes 2 arguments, not {len(args)}", node)
    doc, path = args
    if isinstance(path, exp.Literal) and path.is_string and _SIMPLE_JSON_PATH.fullmatch(path.this):
        # The common `$.a.b` stays in DuckDB's own JSON reader.
        return template("TRY(json_extract_string(_0, _1))", doc, path)
    return template("__hive_json_path(_0, _1)", doc, path)


@_on(exp.Elt)
def _elt(n: exp.Expr) -> exp.Expr:
    return template("list_extract(_1, _0)", n.this, exp.Array(expressions=list(n.expressions)))


@_on(exp.WidthBucket)
def _width_bucket(n: exp.Expr) -> exp.Expr:
    args = [n.this, n.args.get("min_value"), n.args.get("max_value"), n.args.get("num_buckets")]
    if any(a is None for a in args):
        raise TranslateError("width_bucket takes 4 arguments", n)
    return template(BY_NAME["width_bucket"][1], *args)


@_on(exp.Factorial)
def _factorial(n: exp.Expr) -> exp.Expr:
    # Hive: NULL outside 0..20 (a bigint would overflow).
    return template(
        "CASE WHEN _0 BETWEEN 0 AND 20 THEN CAST(factorial(CAST(_0 AS INTEGER)) AS BIGINT) END", n.this
    )


@_on(exp.Greatest, exp.Least)
def _greatest(n: exp.Expr) -> exp.Expr:
    # Hive 2.0+: NULL when any argument is NULL (DuckDB skips NULLs).
    args = [n.this, *n.expressions]
    name = "greatest" if isinstance(n, exp.Greatest) else "least"
    nulls = " OR ".join(f"_{i} IS NULL" for i in range(len(args)))
    call = ", ".join(f"_{i}" for i in range(len(args)))
    if len(args) > 10:
        raise TranslateError(f"{name} takes at most 10 arguments in tailrace hive", n)
    return template(f"CASE WHEN {nulls} THEN NULL ELSE {name}({call}) END", *args)


@_on(exp.CurrentDatabase, exp.CurrentSchema)
def _current_database(n: exp.Expr) -> exp.Expr:
    return exp.Literal.string("default")


@_on(exp.Chr)
def _chr(n: exp.Expr) -> exp.Expr:
    # Hive: chr(n % 256); a negative number gives ''.
    if len(n.expressions) != 1:
        raise TranslateError("chr takes 1 argument", n)
    return template(
        "CASE WHEN _0 < 0 THEN '' ELSE chr(CAST(CAST(_0 AS BIGINT) % 256 AS INTEGER)) END", n.expressions[0]
    )


_EXTRACT_UNITS = {"YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND", "DAYOFWEEK"}


@_on(exp.Extract)
def _extract(n: exp.Expr) -> exp.Expr | None:
    # Hive reads a string argument as a date or timestamp text.
    unit = n.this.name.upper() if isinstance(n.this, exp.Var) else ""
    if unit not in _EXTRACT_UNITS or isinstance(n.expression, exp.Interval):
        return None
    if unit == "DAYOFWEEK":
        return template("dayofweek(__hive_ts(_0)) + 1", n.expression)
    if unit == "SECOND":
        return template("second(__hive_ts(_0))", n.expression)
    return template(f"date_part('{unit.lower()}', __hive_ts(_0))", n.expression)


@_on(exp.ArrayAgg)
def _collect_list(n: exp.Expr) -> exp.Expr | None:
    # Hive's collect_list of no rows is [] (DuckDB's list gives NULL); NULLs are skipped.
    if n.find_ancestor(exp.Window) is not None or isinstance(n.parent, exp.Window):
        return None
    return template("coalesce(list(_0) FILTER (WHERE _0 IS NOT NULL), [])", n.this)


@_on(exp.ArrayUniqueAgg)
def _collect_set(n: exp.Expr) -> exp.Expr | None:
    # Hive's collect_set is a LinkedHashSet: first occurrences in input order; [] over no rows.
    if n.find_ancestor(exp.Window) is not None or isinstance(n.parent, exp.Window):
        return None
    return template(
        "coalesce(list_select(list(_0) FILTER (WHERE _0 IS NOT NULL), "
        "__hive_first_seen(to_json(list(_0) FILTER (WHERE _0 IS NOT NULL)))), [])",
        n.this,
    )


@_on(exp.ArrayContains)
def _array_contains(n: exp.Expr) -> exp.Expr:
    # GenericUDFArrayContains: false (never NULL) for a NULL value or a NULL or empty array.
    return template("coalesce(list_contains(_0, _1), false)", n.this, n.expression)


_BINARY_MAKERS = (exp.Encode, exp.Unhex, exp.FromBase64)


@_on(exp.Length)
def _length(n: exp.Expr) -> exp.Expr | None:
    # length of a binary value counts its bytes (DuckDB's length takes text only).
    arg = n.this
    if isinstance(arg, exp.Cast) and arg.to.this in (exp.DataType.Type.BINARY, exp.DataType.Type.VARBINARY):
        return template("octet_length(encode(CAST(_0 AS VARCHAR)))", arg.this)
    binary = isinstance(arg, _BINARY_MAKERS)
    binary = binary or (
        isinstance(arg, exp.Anonymous) and arg.name.lower() in ("aes_encrypt", "unhex", "encode")
    )
    return template("octet_length(_0)", arg) if binary else None


@_on(exp.Negative)
def _negative(n: exp.Expr) -> exp.Expr:
    return template("(-(_0))", n.this)


def unix_timestamp(node: exp.StrToUnix, *, stringy: bool, timezone: str) -> exp.Expr:
    """unix_timestamp([text [, pattern]]) in the session time zone."""
    if node.this is None or isinstance(node.this, exp.CurrentTimestamp):
        return template("CAST(epoch(current_timestamp) AS BIGINT)")
    fmt_sql = _DUCK.generator().format_time(node) or "'%Y-%m-%d %H:%M:%S'"
    java = node.meta.get(javatime.META_KEY)
    duck = javatime.to_strftime(java, parsing=True) if java is not None else None
    if duck is not None:
        fmt_sql = "'" + duck.replace("'", "''") + "'"
    fmt = fmt_sql[1:-1].replace("''", "'")
    try:
        width = len(datetime(2000, 12, 28, 23, 59, 58).strftime(fmt))
    except ValueError:
        width = 0
    # SimpleDateFormat.parse reads a prefix: '2012-12-21 04:22:02+09:00' parses with the
    # default pattern. Try the whole text, then the pattern's fixed width. A DATE or TIMESTAMP
    # argument is read as itself (its text may not fit the pattern).
    typed = "" if stringy else ", TRY_CAST(_0 AS TIMESTAMP)"
    if duck is not None and "%z" in duck:
        # The text carries its offset (pattern X or Z): that instant, whatever the session zone;
        # ISO 8601's 'Z' is UTC.
        expr = f"CAST(epoch(try_strptime(regexp_replace(_0, 'Z$', '+00:00'), {fmt_sql})) AS BIGINT)"
    else:
        expr = (
            f"CAST(epoch(timezone({serde.sql_str(timezone)}, coalesce(try_strptime(_0, {fmt_sql}), "
            f"try_strptime(left(_0, {width}), {fmt_sql}){typed}))) AS BIGINT)"
        )
    arg = node.this if stringy else exp.Cast(this=node.this, to=exp.DataType.build("VARCHAR"))
    return sqlglot.parse_one(expr, read="duckdb").transform(
        lambda n: arg.copy() if isinstance(n, exp.Column) and n.name == "_0" and not n.table else n
    )
