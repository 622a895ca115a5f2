"""Parsers with fluentd's field names, types and time formats, working on batches of lines.

The regex formats (apache2, apache, nginx, regex) run as one vectorised polars expression per
batch: `str.extract_groups` with the Rust regex engine, vectorised time parsing, and the
apache2 conversions (`-` to null, code/size to integers) as column expressions. json, ltsv and
a regex the Rust engine cannot compile (look-around, back-references) take a per-line path.

A parser never drops a line: each line is either a record or a (line index, reason) in `bad`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl
from dateutil import parser as dateparser

from tailrace.agent.config import ParseConfig, local_zone
from tailrace.errors import ConfigError

APACHE_TIME = "%d/%b/%Y:%H:%M:%S %z"

# fluentd's regexes (parser_apache2.rb, parser_apache.rb, parser_nginx.rb), in Rust/Python syntax.
APACHE2 = (
    r'^(?P<host>[^ ]*) [^ ]* (?P<user>[^ ]*) \[(?P<time>[^\]]*)\] "(?P<method>\S+)'
    r'(?: +(?P<path>(?:[^"]|\\")*?)(?: +\S*)?)?" (?P<code>[^ ]*) (?P<size>[^ ]*)'
    r'(?: "(?P<referer>(?:[^"]|\\")*)" "(?P<agent>(?:[^"]|\\")*)")?$'
)
APACHE = (
    r'^(?P<host>[^ ]*) [^ ]* (?P<user>[^ ]*) \[(?P<time>[^\]]*)\] "(?P<method>\S+)'
    r'(?: +(?P<path>[^ ]*) +\S*)?" (?P<code>[^ ]*) (?P<size>[^ ]*)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?$'
)
NGINX = (
    r'^(?P<remote>[^ ]*) (?P<host>[^ ]*) (?P<user>[^ ]*) \[(?P<time>[^\]]*)\] "(?P<method>\S+)'
    r'(?: +(?P<path>[^"]*?)(?: +\S*)?)?" (?P<code>[^ ]*) (?P<size>[^ ]*)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"(?:\s+"?(?P<http_x_forwarded_for>[^"]*)"?)?)?$'
)
_MARK = "tailrace_matched"


@dataclass
class Parsed:
    """Good rows (time + record) and the indices of bad lines, with reasons."""

    time: pl.Series
    """Datetime[us, UTC], one per good row."""
    frame: pl.DataFrame | None = None
    """Record columns in key order (vectorised parsers)."""
    dicts: list[dict[str, Any]] | None = None
    """Records (per-line parsers)."""
    nullable_keys: tuple[str, ...] = ()
    """Columns whose null means "key absent", as fluentd's RegexpParser skips unmatched groups."""
    bad: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.time)


class Parser(ABC):
    name: str

    @abstractmethod
    def parse(self, lines: pl.Series, now: datetime) -> Parsed:
        """Parse a batch of lines (UTF-8 strings without the newline)."""


def _ruby_groups(expression: str) -> str:
    """Ruby/Onigmo `(?<name>...)` to `(?P<name>...)` (both engines accept the P form)."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", expression)


def _group_names(expression: str) -> list[str]:
    return re.findall(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>", expression)


def _epoch_series(values: Sequence[float | None]) -> pl.Series:
    micros = [None if v is None else round(v * 1_000_000) for v in values]
    return pl.Series("time", micros, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


class TimeParser:
    """fluentd's time_type / time_format on a column of strings or numbers."""

    def __init__(self, conf: ParseConfig, default_format: str | None = None) -> None:
        self.type = conf.time_type
        self.format = conf.time_format or default_format
        if self.format:
            # Ruby strptime extras that chrono spells differently.
            self.format = self.format.replace("%N", "%f").replace("%L", "%3f")
        self.zone = local_zone()
        self._cache: dict[str, float | None] = {}

    def series(self, values: pl.Series) -> pl.Series:
        """Datetime[us, UTC] (null where a value does not parse)."""
        if self.type in ("unixtime", "float") or values.dtype.is_numeric():
            secs = values.cast(pl.Float64, strict=False)
            return (
                (secs * 1_000_000).round().cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
            )
        values = values.cast(pl.String)
        if self.format:
            try:
                parsed = values.str.to_datetime(self.format, strict=False, time_unit="us")
            except pl.exceptions.PolarsError as exc:
                raise ConfigError(f"time_format {self.format!r} cannot be used: {exc}")
            if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is None:
                parsed = parsed.dt.replace_time_zone(self.zone, ambiguous="earliest", non_existent="null")
            return parsed.dt.convert_time_zone("UTC")
        return _epoch_series([self.one(v) for v in values.to_list()])

    def one(self, value: Any) -> float | None:
        """One value without a format: epoch numbers, ISO-8601, then dateutil's free parser."""
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        text = str(value)
        if text in self._cache:
            return self._cache[text]
        result: float | None
        try:
            result = float(text)
        except ValueError:
            try:
                if self.format:
                    dt = datetime.strptime(text, self.format.replace("%3f", "%f"))
                else:
                    try:
                        dt = datetime.fromisoformat(text)
                    except ValueError:
                        dt = dateparser.parse(text)
                if dt.tzinfo is None:
                    from zoneinfo import ZoneInfo

                    dt = dt.replace(tzinfo=ZoneInfo(self.zone))
                result = dt.timestamp()
            except (ValueError, OverflowError):
                result = None
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[text] = result
        return result


def _convert_expr(name: str, kind: str) -> pl.Expr:
    col = pl.col(name)
    base = kind.split(":", 1)[0]
    if base == "integer":
        return col.str.extract(r"^\s*([+-]?\d+)", 1).cast(pl.Int64, strict=False).fill_null(0).alias(name)
    if base == "float":
        return (
            col.str.extract(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", 1)
            .cast(pl.Float64, strict=False)
            .fill_null(0.0)
            .alias(name)
        )
    if base == "bool":
        return (col == "true").alias(name)
    if base == "array":
        sep = kind.split(":", 1)[1] if ":" in kind else ","
        return col.str.split(sep).alias(name)
    return col


def _convert_value(value: Any, kind: str) -> Any:
    base = kind.split(":", 1)[0]
    if value is None:
        return None
    text = str(value)
    if base == "integer":
        m = re.match(r"\s*([+-]?\d+)", text)
        return int(m.group(1)) if m else 0
    if base == "float":
        m = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", text)
        return float(m.group(1)) if m else 0.0
    if base == "bool":
        return text == "true"
    if base == "array":
        return text.split(kind.split(":", 1)[1] if ":" in kind else ",")
    return value


class RegexParser(Parser):
    """fluentd's RegexpParser: named groups become string fields; `types` converts them."""

    name = "regex"
    time_format: str | None = None

    def __init__(self, conf: ParseConfig, expression: str | None = None) -> None:
        self.conf = conf
        self.expression = _ruby_groups(expression or conf.expression or "")
        self.names = _group_names(self.expression)
        if not self.names:
            raise ConfigError(f"regex {conf.expression!r} has no named group (?<name>...)")
        try:
            self.py: re.Pattern[str] | None = re.compile(self.expression)
        except re.error as exc:
            self.py = None
            py_error = str(exc)
        self.vectorised = True
        try:
            pl.Series([""]).str.extract_groups(f"(?P<{_MARK}>){self.expression}")
        except pl.exceptions.PolarsError:
            self.vectorised = False
        if not self.vectorised and self.py is None:
            raise ConfigError(f"regex {conf.expression!r} does not compile: {py_error}")
        self.time = TimeParser(conf, self.time_format)
        self.null_re = re.compile(conf.null_value_pattern) if conf.null_value_pattern else None
        self.fields = [n for n in self.names if n != conf.time_key or conf.keep_time_key]

    def _conversions(self) -> list[pl.Expr]:
        exprs = []
        for name in self.fields:
            col = pl.col(name)
            if self.null_re is not None:
                col = (
                    pl.when(col.str.contains(f"^(?:{self.conf.null_value_pattern})$"))
                    .then(None)
                    .otherwise(col)
                )
            if self.conf.null_empty_string:
                col = pl.when(col == "").then(None).otherwise(col)
            exprs.append(col.alias(name))
        return exprs

    def _records(self, frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.select(self._conversions())
        if self.conf.types:
            frame = frame.with_columns(
                [_convert_expr(n, k) for n, k in self.conf.types.items() if n in frame.columns]
            )
        return frame

    def parse(self, lines: pl.Series, now: datetime) -> Parsed:
        if not self.vectorised:
            return self._parse_slow(lines, now)
        groups = (
            pl.DataFrame({"line": lines})
            .lazy()
            .select(pl.col("line").str.extract_groups(f"(?P<{_MARK}>){self.expression}").alias("g"))
            .unnest("g")
            .with_row_index("i")
            .collect()
        )
        matched = groups[_MARK].is_not_null()
        bad = [(i, "pattern not matched") for i in groups.filter(~matched)["i"].to_list()]
        good = groups.filter(matched) if bad else groups
        key = self.conf.time_key
        if key in self.names:
            raw = good[key]
            time = self.time.series(raw)
            missing = raw.is_null()
            if missing.any():  # the time group did not take part: now, as estimate_current_event
                time = time.set(missing, now.astimezone(UTC))
            failed = time.is_null()
            if failed.any():
                bad += [(i, f"invalid time (format {self.time.format!r})") for i in good.filter(failed)["i"]]
                good, time = good.filter(~failed), time.filter(~failed)
        else:
            time = pl.repeat(now.astimezone(UTC), len(good), eager=True).cast(pl.Datetime("us", "UTC"))
        bad.sort()
        return Parsed(
            time=time.alias("time"), frame=self._records(good), nullable_keys=tuple(self.fields), bad=bad
        )

    def _parse_slow(self, lines: pl.Series, now: datetime) -> Parsed:
        assert self.py is not None
        times: list[float | None] = []
        dicts: list[dict[str, Any]] = []
        bad: list[tuple[int, str]] = []
        key = self.conf.time_key
        for i, line in enumerate(lines.to_list()):
            m = self.py.search(line)
            if m is None:
                bad.append((i, "pattern not matched"))
                continue
            rec = {k: v for k, v in m.groupdict().items() if v is not None}
            t = now.timestamp() if rec.get(key) is None else self.time.one(rec[key])
            if t is None:
                bad.append((i, f"invalid time (format {self.time.format!r})"))
                continue
            if not self.conf.keep_time_key:
                rec.pop(key, None)
            dicts.append(_finish(rec, self.conf, self.null_re))
            times.append(t)
        return Parsed(time=_epoch_series(times), dicts=dicts, bad=bad)


def _finish(rec: dict[str, Any], conf: ParseConfig, null_re: re.Pattern[str] | None) -> dict[str, Any]:
    if null_re is not None or conf.null_empty_string:
        for k, v in rec.items():
            if isinstance(v, str) and (
                (null_re is not None and null_re.fullmatch(v)) or (conf.null_empty_string and v == "")
            ):
                rec[k] = None
    for name, kind in conf.types.items():
        if name in rec:
            rec[name] = _convert_value(rec[name], kind)
    return rec


class ApacheParser(RegexParser):
    name = "apache"
    time_format = APACHE_TIME

    def __init__(self, conf: ParseConfig) -> None:
        super().__init__(conf, APACHE)


class NginxParser(RegexParser):
    name = "nginx"
    time_format = APACHE_TIME

    def __init__(self, conf: ParseConfig) -> None:
        super().__init__(conf, NGINX)


class Apache2Parser(RegexParser):
    """apache2: `-` becomes null, code and size integers (code 0 null), every key present."""

    name = "apache2"
    time_format = APACHE_TIME

    def __init__(self, conf: ParseConfig) -> None:
        super().__init__(conf, APACHE2)

    def _records(self, frame: pl.DataFrame) -> pl.DataFrame:
        def dash(name: str) -> pl.Expr:
            return pl.when(pl.col(name) == "-").then(None).otherwise(pl.col(name)).alias(name)

        def to_i(name: str) -> pl.Expr:  # Ruby String#to_i: leading integer, else 0
            c = pl.col(name)
            return pl.coalesce(
                c.cast(pl.Int64, strict=False), c.str.extract(r"^\s*([+-]?\d+)", 1).cast(pl.Int64), 0
            )

        code = to_i("code")
        cols = [
            dash("host"),
            dash("user"),
            pl.col("method"),
            pl.col("path"),
            pl.when(code == 0).then(None).otherwise(code).alias("code"),
            pl.when(pl.col("size") == "-").then(None).otherwise(to_i("size")).alias("size"),
            dash("referer"),
            dash("agent"),
        ]
        if self.conf.keep_time_key:
            cols.append(pl.col("time"))
        return frame.lazy().select(cols).collect()

    def parse(self, lines: pl.Series, now: datetime) -> Parsed:
        parsed = super().parse(lines, now)
        parsed.nullable_keys = ()
        return parsed


class NoneParser(Parser):
    name = "none"

    def __init__(self, conf: ParseConfig) -> None:
        self.key = conf.message_key

    def parse(self, lines: pl.Series, now: datetime) -> Parsed:
        time = pl.repeat(now.astimezone(UTC), len(lines), eager=True).cast(pl.Datetime("us", "UTC"))
        return Parsed(time=time.alias("time"), frame=pl.DataFrame({self.key: lines}))


class _PerLineParser(Parser):
    def __init__(self, conf: ParseConfig) -> None:
        self.conf = conf
        self.time = TimeParser(conf)
        self.null_re = re.compile(conf.null_value_pattern) if conf.null_value_pattern else None

    @abstractmethod
    def record(self, line: str) -> dict[str, Any]:
        """One record; raises ValueError with a reason when the line is not valid."""

    def parse(self, lines: pl.Series, now: datetime) -> Parsed:
        times: list[float | None] = []
        dicts: list[dict[str, Any]] = []
        bad: list[tuple[int, str]] = []
        key = self.conf.time_key
        for i, line in enumerate(lines.to_list()):
            try:
                rec = self.record(line)
            except ValueError as exc:
                bad.append((i, str(exc)))
                continue
            t = now.timestamp() if rec.get(key) is None else self.time.one(rec[key])
            if t is None:
                bad.append((i, f"invalid time {rec[key]!r}"))
                continue
            if not self.conf.keep_time_key:
                rec.pop(key, None)
            dicts.append(_finish(rec, self.conf, self.null_re))
            times.append(t)
        return Parsed(time=_epoch_series(times), dicts=dicts, bad=bad)


class JsonParser(_PerLineParser):
    name = "json"

    def record(self, line: str) -> dict[str, Any]:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc}")
        if not isinstance(rec, dict):
            raise ValueError("JSON value is not an object")
        return rec


class LtsvParser(_PerLineParser):
    name = "ltsv"

    def record(self, line: str) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        for item in line.split(self.conf.delimiter):
            if not item:
                continue
            label, sep, value = item.partition(self.conf.label_delimiter)
            rec[label] = value if sep else None
        if not rec:
            raise ValueError("no label:value pairs")
        return rec


_PARSERS: dict[str, Callable[[ParseConfig], Parser]] = {
    "apache2": Apache2Parser,
    "apache": ApacheParser,
    "nginx": NginxParser,
    "regex": RegexParser,
    "json": JsonParser,
    "ltsv": LtsvParser,
    "none": NoneParser,
}


def make_parser(conf: ParseConfig) -> Parser:
    return _PARSERS[conf.type](conf)
