"""Hive function calls as Spark SQL that gives Hive's answer (docs/engines.md lists them).

Each rewrite maps one call node to a Spark expression; `dialect.to_spark` applies them bottom-up
(arguments first). Where Spark has no such function, or answers otherwise, the call goes to a
Python UDF that runs the DuckDB engine's implementation (spark/udfs.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from tailrace.engines.hive import functions as hive_functions
from tailrace.engines.hive.translate_errors import TranslateError
from tailrace.engines.hive.udfs_stats import AGGREGATES

_SIMPLE_JSON_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_]*)+")
_MASKS = ("mask_first_n", "mask_last_n", "mask_show_first_n", "mask_show_last_n")
_BOOLEAN = (exp.Boolean, exp.Predicate, exp.Not, exp.And, exp.Or)


def template(sql: str, *args: exp.Expr) -> exp.Expr:
    """Spark SQL with `_0`, `_1`... standing for the given argument expressions."""

    def put(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and not n.table and re.fullmatch(r"_\d", n.name):
            return args[int(n.name[1])].copy()
        return n

    return sqlglot.parse_one(sql, read="spark").transform(put)


def _arity(name: str, args: list[exp.Expr], counts: tuple[int, ...], node: exp.Expr) -> None:
    if len(args) not in counts:
        raise TranslateError(f"{name} takes {' or '.join(map(str, counts))} arguments, not {len(args)}", node)


def _anonymous(node: exp.Anonymous) -> exp.Expr | None:
    name = node.name.lower()
    args = list(node.expressions)
    if name == "variance":  # Hive's variance is the population one
        return exp.Anonymous(this="var_pop", expressions=args)
    if name == "std":
        return exp.StddevPop(this=args[0]) if len(args) == 1 else None
    if name == "pmod" and len(args) == 2:
        # Hive: ((a % b) + b) % b, so the sign follows b; Spark's pmod is never negative.
        return template("((_0 % _1) + _1) % _1", *args)
    if name == "hash":
        # Hive's hash: an int is itself, a string its String.hashCode, NULL 0 (Spark: Murmur3).
        _arity(name, args, (1,), node)
        return template(
            "CASE WHEN _0 IS NULL THEN 0 WHEN typeof(_0) = 'string' THEN "
            "__hive_string_hash(CAST(_0 AS STRING)) WHEN typeof(_0) = 'boolean' THEN "
            "CASE WHEN CAST(_0 AS BOOLEAN) THEN 1 ELSE 0 END ELSE CAST(_0 AS BIGINT) END",
            args[0],
        )
    if name == "printf" and args and isinstance(args[0], exp.Literal) and re.search(r"%[hH]", args[0].this):
        # %h of a string is its Java hashCode in Hive, Murmur3 in Spark's format_string.
        rest = exp.Array(expressions=[exp.cast(a.copy(), "string") for a in args[1:]])
        return template("__hive_printf(_0, _1)", args[0], rest)
    if name == "index" and len(args) == 2:  # Hive's index(a, i) is a[i] (from 0; maps by key)
        return exp.Bracket(this=args[0], expressions=[args[1]])
    if name == "field":
        return hive_functions._field(args)
    if name in ("aes_encrypt", "aes_decrypt") and len(args) == 2:
        # Hive: AES/ECB/PKCS5Padding, NULL for a key that is not 16, 24 or 32 bytes; Spark's
        # default mode is GCM and it fails on such a key (and on a wrong key: try_ gives NULL).
        call = "aes_encrypt" if name == "aes_encrypt" else "try_aes_decrypt"
        return template(
            f"CASE WHEN octet_length(_1) IN (16, 24, 32) THEN {call}(_0, _1, 'ECB', 'PKCS') END", *args
        )
    if name in hive_functions.XPATH:
        return hive_functions._xpath(name, args, node)
    if name in AGGREGATES:
        return _stats(name, args, node)
    if name == "get_json_object":
        _arity(name, args, (2,), node)
        path = args[1]
        if isinstance(path, exp.Literal) and path.is_string and _SIMPLE_JSON_PATH.fullmatch(path.this):
            return None  # `$.a.b`: Spark's own reader agrees with Hive's
        return template("__hive_json_path(CAST(_0 AS STRING), CAST(_1 AS STRING))", *args)
    if name == "mask":
        _arity(name, args, (1, 4), node)
        masks: list[exp.Expr] = args[1:] if len(args) == 4 else [exp.Literal.string(c) for c in "Xxn"]
        return template("__hive_mask(CAST(_0 AS STRING), _1, _2, _3)", args[0], *masks)
    if name == "sentences":
        # Hive splits "a b. c d." in two sentences where Spark's sentences keeps one.
        _arity(name, args, (1, 2, 3), node)
        return template("__hive_sentences(CAST(_0 AS STRING))", args[0])
    if name in _MASKS:
        _arity(name, args, (1, 2), node)
        n = args[1] if len(args) == 2 else exp.Literal.number(4)
        return template(f"__hive_{name}(CAST(_0 AS STRING), CAST(_1 AS INT))", args[0], n)
    return None


def _stats(name: str, args: list[exp.Expr], node: exp.Expr) -> exp.Expr:
    """ngrams, context_ngrams, histogram_numeric: the group's values in scan order, then
    Hive's algorithm replayed over them (as the DuckDB engine does)."""
    _arity(name, args, tuple(range(AGGREGATES[name][0], AGGREGATES[name][1] + 1)), node)
    if name == "histogram_numeric":
        return template(
            "__hive_histogram_numeric(collect_list(CAST(_0 AS DOUBLE)), CAST(_1 AS BIGINT))", *args
        )
    pf = args[3] if len(args) == 4 else exp.Literal.number(1)
    second = "CAST(_1 AS BIGINT)" if name == "ngrams" else "CAST(_1 AS ARRAY<STRING>)"
    return template(
        f"__hive_{name}(CASE WHEN count(_0) > 0 THEN to_json(collect_list(_0)) END, {second}, "
        "CAST(_2 AS BIGINT), CAST(_3 AS BIGINT))",
        *args[:3],
        pf,
    )


def _percentile_approx(node: exp.ApproxQuantile) -> exp.Expr:
    q = node.args["quantile"]
    bins = node.args.get("accuracy") or node.args.get("weight") or exp.Literal.number(10000)
    call = "__hive_percentile_approx(collect_list(CAST(_0 AS DOUBLE)), {}, CAST(_2 AS BIGINT))"
    if isinstance(q, exp.Array):
        return template(call.format("CAST(_1 AS ARRAY<DOUBLE>)"), node.this, q, bins)
    return template(call.format("array(CAST(_1 AS DOUBLE))") + "[0]", node.this, q, bins)


def _pad(node: exp.Pad) -> exp.Expr:
    # Hive fails (/ by zero) when it has to pad with an empty string; Spark pads with nothing.
    name = "lpad" if node.args.get("is_left") else "rpad"
    fill = node.args.get("fill_pattern")
    if fill is None:
        return node
    message = f"'{name} with an empty pad string (Hive fails: / by zero)'"
    return template(
        f"CASE WHEN _2 = '' AND length(_0) < _1 THEN raise_error({message}) ELSE _3 END",
        node.this,
        node.expression,
        fill,
        node.copy(),
    )


def _null_if_any_null(node: exp.Greatest | exp.Least) -> exp.Expr:
    # Hive's greatest/least are NULL when any argument is; Spark's skip NULLs.
    args = [node.this, *node.expressions]
    test = " OR ".join(f"_{i} IS NULL" for i in range(len(args)))
    return template(f"CASE WHEN {test} THEN NULL ELSE _{len(args)} END", *args, node.copy())


def _cast(node: exp.Cast) -> exp.Expr | None:
    # Hive prints a boolean cast to a string as TRUE/FALSE.
    if node.to.this == exp.DataType.Type.TEXT or node.to.is_type("string", "varchar"):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, _BOOLEAN):
            return template("upper(_0)", node.copy())
    return None


def _array_contains(node: exp.ArrayContains) -> exp.Expr:
    # GenericUDFArrayContains: false, never NULL (a NULL value, a NULL array).
    if isinstance(node.expression, exp.Null):
        return exp.false()
    return template("coalesce(_0, false)", node.copy())


_BY_TYPE: dict[type[exp.Expr], Callable[..., exp.Expr | None]] = {
    exp.Anonymous: _anonymous,
    exp.ApproxQuantile: _percentile_approx,
    exp.Greatest: _null_if_any_null,
    exp.Least: _null_if_any_null,
    exp.Cast: _cast,
    exp.TryCast: _cast,
    exp.ArrayContains: _array_contains,
    exp.Pad: _pad,
    exp.Stddev: lambda n: exp.StddevPop(this=n.this),
}


def rewrite(node: exp.Expr) -> exp.Expr | None:
    """The Spark form of a Hive call, or None when Spark's own gives Hive's answer."""
    fn = _BY_TYPE.get(type(node))
    return fn(node) if fn is not None else None
