"""Hive's estimating aggregates, run exactly as one Hive task runs them: `ngrams`,
`context_ngrams` (NGramEstimator) and `histogram_numeric` (NumericHistogram, Ben-Haim & Tom-Tov).

DuckDB has no Python aggregates, so the translator collects a group's values with `list()` (in
scan order, as one Hive mapper reads its split) and a scalar function here replays Hive's
algorithm over them. Both algorithms depend on the order of the values once they have to
forget (more distinct n-grams than 2·k·pf, more distinct numbers than the bins): docs/hive.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
from duckdb.sqltypes import BIGINT, BOOLEAN, DOUBLE, FLOAT, INTEGER, SMALLINT, VARCHAR
from sqlglot import exp

from tailrace.engines.hive.translate_errors import TranslateError

AGGREGATES = {"ngrams": (3, 4), "context_ngrams": (3, 4), "histogram_numeric": (2, 2)}

_MASK32 = 0xFFFFFFFF


def _int32(v: int) -> int:
    v &= _MASK32
    return v - (1 << 32) if v & 0x80000000 else v


def _java_string_hash(s: str) -> int:
    raw = s.encode("utf-16-be")  # String.hashCode runs over UTF-16 code units
    h = 0
    for i in range(0, len(raw), 2):
        h = (31 * h + (raw[i] << 8 | raw[i + 1])) & _MASK32
    return _int32(h)


def _list_hash(words: tuple[str, ...]) -> int:
    h = 1
    for w in words:
        h = (31 * h + (_java_string_hash(w) if w is not None else 0)) & _MASK32
    return _int32(h)


def _bucket(key: tuple[str, ...], capacity: int) -> int:
    h = _list_hash(key) & _MASK32
    return (h ^ (h >> 16)) & (capacity - 1)


def _capacity(max_size: int) -> int:
    # java.util.HashMap: 16 buckets, doubled whenever the size passes 3/4 of them; never shrinks.
    cap = 16
    while max_size > cap * 3 // 4:
        cap *= 2
    return cap


class _Estimator:
    """NGramEstimator: counts in a hash map, trimmed to k·pf when it passes 2·k·pf entries.

    A Python dict keeps insertion order; Java's HashMap iterates by bucket, then by insertion
    within a bucket, so `_ordered` sorts by bucket (stable) to replay Hive's ties."""

    def __init__(self, k: int, pf: int) -> None:
        self.k = k
        self.pf = pf if k * pf >= 1000 else 1000 // k
        self.counts: dict[tuple[str, ...], float] = {}
        self.max_size = 0

    def _ordered(self) -> list[tuple[tuple[str, ...], float]]:
        cap = _capacity(self.max_size)
        return sorted(self.counts.items(), key=lambda kv: _bucket(kv[0], cap))

    def add(self, gram: tuple[str, ...]) -> None:
        self.counts[gram] = self.counts.get(gram, 0.0) + 1.0
        self.max_size = max(self.max_size, len(self.counts))
        if len(self.counts) > self.k * self.pf * 2:
            self._trim(self.k * self.pf)

    def _trim(self, keep: int) -> None:
        entries = sorted(self._ordered(), key=lambda kv: kv[1])  # stable, ascending
        for key, _ in entries[: max(len(entries) - keep, 0)]:
            del self.counts[key]

    def result(self) -> list[dict[str, Any]] | None:
        # The mapper's partial result is re-inserted by the reducer in the mapper's iteration
        # order, trimmed to k·pf, then to k; ties go lexicographically, then shorter first.
        reducer = _Estimator(self.k, self.pf)
        reducer.counts = dict(self._ordered())
        reducer.max_size = len(reducer.counts)
        reducer._trim(self.k * self.pf)
        reducer._trim(self.k)
        if not reducer.counts:
            return None
        ranked = sorted(reducer.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"ngram": list(key), "estfrequency": value} for key, value in ranked]


def _sequences(value: Any) -> list[list[str]]:
    if not isinstance(value, list):
        return []
    if value and all(isinstance(v, list) or v is None for v in value):
        return [[w for w in s] for s in value if s is not None]
    return [value]


def ngrams(values_json: str, n: int, k: int, pf: int) -> list[dict[str, Any]] | None:
    if n < 1 or k < 1 or pf < 1:
        raise ValueError("ngrams needs n, k and pf of at least 1")
    est = _Estimator(k, pf)
    for row in json.loads(values_json):
        for seq in _sequences(row):
            for i in range(len(seq) - n, -1, -1):  # Hive walks each sequence backwards
                est.add(tuple(seq[i : i + n]))
    return est.result()


def context_ngrams(
    values_json: str, context: list[str | None], k: int, pf: int
) -> list[dict[str, Any]] | None:
    if not context or all(c is not None for c in context) or k < 1 or pf < 1:
        raise ValueError("context_ngrams needs a context with a NULL and k, pf of at least 1")
    est = _Estimator(k, pf)
    width = len(context)
    for row in json.loads(values_json):
        for seq in _sequences(row):
            for i in range(len(seq) - width, -1, -1):
                window = seq[i : i + width]
                if all(c is None or c == w for c, w in zip(context, window, strict=True)):
                    est.add(tuple(w for c, w in zip(context, window, strict=True) if c is None))
    return est.result()


class _JavaRandom:
    """java.util.Random's 48-bit LCG (Hive breaks ties between equally close bins with it)."""

    def __init__(self, seed: int) -> None:
        self.seed = (seed ^ 0x5DEECE66D) & ((1 << 48) - 1)

    def _next(self, bits: int) -> int:
        self.seed = (self.seed * 0x5DEECE66D + 0xB) & ((1 << 48) - 1)
        return self.seed >> (48 - bits)

    def next_double(self) -> float:
        return ((self._next(26) << 27) + self._next(27)) * (1.0 / (1 << 53))


def histogram_numeric(values: list[float | None], nbins: int) -> list[dict[str, float]] | None:
    """NumericHistogram.add for each value in order, then its bins (the reducer copies one
    mapper's partial histogram unchanged)."""
    if nbins < 2:
        raise ValueError("histogram_numeric needs at least 2 bins")
    rng = _JavaRandom(31183)
    xs: list[float] = []
    ys: list[float] = []
    for v in values:
        if v is None:
            continue
        lo, hi, at = 0, len(xs), 0
        while lo < hi:  # the binary search Hive does, stopping at an equal centre
            at = (lo + hi) // 2
            if xs[at] > v:
                hi = at
            elif xs[at] < v:
                at += 1
                lo = at
            else:
                break
        if at < len(xs) and xs[at] == v:
            ys[at] += 1.0
            continue
        xs.insert(at, v)
        ys.insert(at, 1.0)
        while len(xs) > nbins:
            _merge_closest(xs, ys, rng)
    if not xs:
        return None
    return [{"x": x, "y": y} for x, y in zip(xs, ys, strict=True)]


def _quantile(xs: list[float], ys: list[float], q: float) -> float:
    """NumericHistogram.quantile: linear between the centres of the bins around q."""
    total = sum(ys)
    csum = 0.0
    for b, y in enumerate(ys):
        csum += y
        if csum / total >= q:
            if b == 0:
                return xs[0]
            csum -= y
            return xs[b - 1] + (q * total - csum) * (xs[b] - xs[b - 1]) / y
    return -1.0


def percentile_approx(values: list[float | None], quantiles: list[float], nbins: int) -> list[float] | None:
    """Hive's percentile_approx: the streaming histogram of nbins (default 10000), then
    NumericHistogram.quantile for each requested percentile."""
    if any(q is None or not 0.0 <= q <= 1.0 for q in quantiles):
        raise ValueError("percentile_approx needs percentiles between 0 and 1")
    bins = histogram_numeric(values, nbins)
    if bins is None:
        return None
    xs, ys = [b["x"] for b in bins], [b["y"] for b in bins]
    return [_quantile(xs, ys, q) for q in quantiles]


def _merge_closest(xs: list[float], ys: list[float], rng: _JavaRandom) -> None:
    best = xs[1] - xs[0]
    loc, ties = 0, 1
    for i in range(1, len(xs) - 1):
        diff = xs[i + 1] - xs[i]
        if diff < best:
            best, loc, ties = diff, i, 1
        elif diff == best:
            ties += 1
            if rng.next_double() <= 1.0 / ties:
                loc = i
    d = ys[loc] + ys[loc + 1]
    x = xs[loc] * (ys[loc] / d)
    x += xs[loc + 1] / d * ys[loc + 1]
    xs[loc], ys[loc] = x, d
    del xs[loc + 1], ys[loc + 1]


def first_seen(values_json: str) -> list[int]:
    """1-based positions of each value's first occurrence (collect_set keeps input order)."""
    seen: set[str] = set()
    out = []
    for i, v in enumerate(json.loads(values_json), 1):
        key = json.dumps(v, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


def table() -> list[tuple[str, Any, list[Any], Any]]:
    """The Python functions of this module and of `xpath`, for udfs.ensure (DuckDB's list and
    struct types, and `xpath`, are made or imported here: a script that needs none of these
    functions does not wait for them)."""
    from tailrace.engines.hive import xpath

    xml = [VARCHAR, VARCHAR]
    grams = duckdb.list_type(duckdb.struct_type({"ngram": duckdb.list_type(VARCHAR), "estfrequency": DOUBLE}))
    bins = duckdb.list_type(duckdb.struct_type({"x": DOUBLE, "y": DOUBLE}))
    return [
        ("__hive_xpath", xpath.xpath, xml, duckdb.list_type(VARCHAR)),
        ("__hive_xpath_string", xpath.xpath_string, xml, VARCHAR),
        ("__hive_xpath_boolean", xpath.xpath_boolean, xml, BOOLEAN),
        ("__hive_xpath_int", xpath.xpath_int, xml, INTEGER),
        ("__hive_xpath_long", xpath.xpath_long, xml, BIGINT),
        ("__hive_xpath_short", xpath.xpath_short, xml, SMALLINT),
        ("__hive_xpath_double", xpath.xpath_double, xml, DOUBLE),
        ("__hive_xpath_float", xpath.xpath_double, xml, FLOAT),
        (
            "__hive_percentile_approx",
            percentile_approx,
            [duckdb.list_type(DOUBLE), duckdb.list_type(DOUBLE), BIGINT],
            duckdb.list_type(DOUBLE),
        ),
        ("__hive_first_seen", first_seen, [VARCHAR], duckdb.list_type(BIGINT)),
        ("__hive_ngrams", ngrams, [VARCHAR, BIGINT, BIGINT, BIGINT], grams),
        (
            "__hive_context_ngrams",
            context_ngrams,
            [VARCHAR, duckdb.list_type(VARCHAR), BIGINT, BIGINT],
            grams,
        ),
        ("__hive_histogram_numeric", histogram_numeric, [duckdb.list_type(DOUBLE), BIGINT], bins),
    ]


NAMES = (
    "__hive_xpath",
    "__hive_xpath_string",
    "__hive_xpath_boolean",
    "__hive_xpath_int",
    "__hive_xpath_long",
    "__hive_xpath_short",
    "__hive_xpath_double",
    "__hive_xpath_float",
    "__hive_percentile_approx",
    "__hive_first_seen",
    "__hive_ngrams",
    "__hive_context_ngrams",
    "__hive_histogram_numeric",
)
"""The names table() registers (tests/engines check that they agree)."""


def call(name: str, args: list[exp.Expr], node: exp.Expr, template: Callable[..., exp.Expr]) -> exp.Expr:
    """The DuckDB form of one of AGGREGATES: the group's values in a list, then the replay."""
    low, high = AGGREGATES[name]
    if not low <= len(args) <= high:
        counts = f"{low}" if low == high else f"{low} or {high}"
        raise TranslateError(f"{name} takes {counts} arguments, not {len(args)}", node)
    if name == "histogram_numeric":
        return template(
            "__hive_histogram_numeric(list(CAST(_0 AS DOUBLE)), CAST(_1 AS BIGINT))", args[0], args[1]
        )
    pf = args[3] if len(args) == 4 else exp.Literal.number(1)
    second = "CAST(_1 AS BIGINT)" if name == "ngrams" else "CAST(_1 AS VARCHAR[])"
    return template(
        f"__hive_{name}(to_json(list(_0) FILTER (WHERE _0 IS NOT NULL)), {second}, "
        "CAST(_2 AS BIGINT), CAST(_3 AS BIGINT))",
        *args[:3],
        pf,
    )
