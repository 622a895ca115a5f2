"""The agent's TOML config: `[[source]]` and `[[match]]` tables with fluentd's key names.

Every key a td-agent user knows keeps its name and meaning (v0.12 names such as `buffer_path`,
`time_slice_format`, `buffer_chunk_limit` and their v1 equivalents are both accepted). Values are
validated once into frozen records; `${hostname}` (and td-agent's `#{Socket.gethostname}`) is
expanded in every string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tailrace.agent.cwmetrics import MetricsConfig
from tailrace.errors import ConfigError, did_you_mean

PARSERS = ("apache2", "combined", "apache", "nginx", "json", "ltsv", "regex", "regexp", "none")
OUTPUTS = ("store", "s3", "file", "stdout")
STORE_AS = {"gzip": "gz", "text": "txt", "json": "json"}
FORMATS = ("out_file", "json", "single_value", "ltsv")
MiB = 1 << 20


@dataclass(frozen=True, kw_only=True)
class ParseConfig:
    type: str = "none"
    expression: str | None = None
    time_key: str = "time"
    time_format: str | None = None
    time_type: str = "string"
    keep_time_key: bool = False
    types: Mapping[str, str] = field(default_factory=dict)
    null_value_pattern: str | None = None
    null_empty_string: bool = False
    message_key: str = "message"
    delimiter: str = "\t"
    label_delimiter: str = ":"


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    id: str
    paths: tuple[str, ...]
    exclude_paths: tuple[str, ...] = ()
    pos_file: Path
    tag: str
    parse: ParseConfig
    read_from_head: bool = False
    rotate_wait: float = 5.0
    refresh_interval: float = 60.0
    max_line_size: int = 32 * MiB
    read_block_size: int = 2 * MiB
    path_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class MatchConfig:
    id: str
    pattern: str
    type: str = "store"
    path: str = ""
    object_key_format: str = "%{path}%{time_slice}_%{index}.%{file_extension}"
    time_slice_format: str = "%Y%m%d"
    timekey: int = 86400
    timekey_wait: float = 600.0
    zone: str = "UTC"
    """IANA zone (or 'UTC') used for time slices and the output time column."""
    utc_suffix: bool = False
    """fluentd's `utc`: write times as ...Z rather than ...+00:00."""
    buffer_path: Path
    flush_mode: str = "lazy"
    flush_interval: float = 60.0
    flush_at_shutdown: bool = True
    chunk_limit_size: int = 256 * MiB
    chunk_limit_records: int | None = None
    total_limit_size: int = 8 * 1024 * MiB
    queued_chunks_limit_size: int | None = None
    store_as: str = "gzip"
    compression_level: int = 1
    retry_wait: float = 1.0
    retry_exponential_backoff_base: float = 2.0
    retry_max_interval: float = 60.0
    check_object: bool = True
    index_format: str = "%d"
    hex_random_length: int = 4
    format: str = "out_file"
    delimiter: str = "\t"
    output_time: bool = True
    output_tag: bool = True
    time_format: str | None = None
    include_time_key: bool = False
    time_key: str = "time"
    include_tag_key: bool = False
    tag_key: str = "tag"
    message_key: str = "message"
    s3_endpoint: str | None = None
    s3_region: str | None = None
    aws_key_id: str | None = None
    aws_sec_key: str | None = None

    @property
    def file_extension(self) -> str:
        return "log" if self.type == "file" and self.store_as == "text" else STORE_AS[self.store_as]


@dataclass(frozen=True, kw_only=True)
class SystemConfig:
    state_dir: Path
    hostname: str
    error_path: str
    monitor_bind: str | None = None
    status_interval: float = 1.0
    poll_interval: float = 0.25


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    sources: tuple[SourceConfig, ...]
    matches: tuple[MatchConfig, ...]
    system: SystemConfig
    origin: str = "<config>"
    warnings: tuple[str, ...] = ()
    metrics: MetricsConfig | None = None
    """[metrics]: where the agent reports its CloudWatch metrics (agent/cwmetrics.py)."""

    def match_for(self, tag: str) -> MatchConfig | None:
        """The first [[match]] whose pattern matches tag, as fluentd routes events."""
        for m in self.matches:
            if tag_matches(m.pattern, tag):
                return m
        return None

    def effective(self) -> dict[str, Any]:
        """Every value after defaults and expansion, for `--check`."""

        def clean(obj: Any) -> Any:
            if isinstance(obj, Mapping):
                return {k: clean(v) for k, v in obj.items() if v is not None}
            if isinstance(obj, list | tuple):
                return [clean(v) for v in obj]
            if isinstance(obj, Path):
                return str(obj)
            return obj

        return {
            "system": clean(asdict(self.system)),
            "source": [clean(asdict(s)) for s in self.sources],
            "match": [
                clean({**asdict(m), "aws_sec_key": "****" if m.aws_sec_key else None}) for m in self.matches
            ],
            **(
                {
                    "metrics": clean(
                        {**asdict(self.metrics), "aws_sec_key": "****" if self.metrics.aws_sec_key else None}
                    )
                }
                if self.metrics is not None
                else {}
            ),
        }


# --- fluentd tag patterns -----------------------------------------------------------------


def _split_parts(pattern: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for c in pattern:
        depth += (c == "{") - (c == "}")
        if c == "." and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    return [*parts, cur]


def _part_regex(part: str) -> str:
    out, i = [], 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append(r"[^.]*")
        elif c == "{":
            end = part.find("}", i)
            if end < 0:
                raise ConfigError(f"match pattern {part!r}: '{{' without '}}'")
            alts = part[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_pattern_regex(a) for a in alts) + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _pattern_regex(pattern: str) -> str:
    parts = _split_parts(pattern)
    if parts == ["**"]:
        return ".*"
    out = ""
    for i, part in enumerate(parts):
        if part == "**":
            # '**' is zero or more parts: it takes the dot on one side with it.
            out += r"(?:[^.]+\.)*" if i == 0 else r"(?:\.[^.]+)*"
        else:
            sep = "" if i == 0 or (i == 1 and parts[0] == "**") else r"\."
            out += sep + _part_regex(part)
    return out


def tag_matches(pattern: str, tag: str) -> bool:
    """fluentd's <match> patterns: '*' one tag part, '**' any parts, '{a,b}' alternatives,
    several patterns separated by spaces."""
    return any(re.fullmatch(_pattern_regex(p), tag) is not None for p in pattern.split())


# --- value parsing ------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt])?(?:i?b)?\s*$", re.I)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Table:
    """One TOML table being read: tracks used keys and names itself in errors."""

    def __init__(self, data: Mapping[str, Any], where: str, hostname: str) -> None:
        self.data = dict(data)
        self.where = where
        self.hostname = hostname
        self.used: set[str] = set()

    def fail(self, key: str, raw: Any, expected: str) -> ConfigError:
        return ConfigError(f"{self.where}: '{key}' has value {raw!r}; expected {expected}")

    def raw(self, *names: str) -> Any:
        for name in names:
            self.used.add(name)
        for name in names:
            if name in self.data:
                return self.data[name]
        return None

    def text(self, *names: str, default: str | None = None, fmt: bool = False) -> str | None:
        value = self.raw(*names)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(names[0], value, "a string")
        host = self.hostname.replace("%", "%%") if fmt else self.hostname
        return value.replace("${hostname}", host).replace("#{Socket.gethostname}", host)

    def req(self, *names: str) -> str:
        value = self.text(*names)
        if not value:
            raise ConfigError(f"{self.where}: '{names[0]}' is required")
        return value

    def flag(self, *names: str, default: bool) -> bool:
        value = self.raw(*names)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(names[0], value, "true or false")
        return value

    def duration(self, *names: str, default: float) -> float:
        value = self.raw(*names)
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        m = _DURATION.match(str(value))
        if not m or isinstance(value, bool):
            raise self.fail(names[0], value, 'a duration such as "10s", "5m", "1h" or seconds')
        return float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]

    def size(self, *names: str, default: int | None) -> int | None:
        value = self.raw(*names)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        m = _SIZE.match(str(value))
        if not m or isinstance(value, bool):
            raise self.fail(names[0], value, 'a size such as "8m", "256MB" or bytes')
        power = " kmgt".index((m.group(2) or " ").lower())
        return int(float(m.group(1)) * (1024**power))

    def whole(self, *names: str, default: int) -> int:
        value = self.raw(*names)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise self.fail(names[0], value, "a whole number")
        return int(value)

    def choice(self, *names: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(*names, default=default) or default
        if value not in choices:
            raise ConfigError(
                f"{self.where}: '{names[0]}' has value {value!r}; expected one of {', '.join(choices)}."
                + did_you_mean(value, choices)
            )
        return value

    def check_unknown(self, known_extra: tuple[str, ...] = ()) -> None:
        for key in self.data:
            if key not in self.used and key not in known_extra:
                raise ConfigError(
                    f"{self.where}: unknown key '{key}'." + did_you_mean(key, self.used | set(known_extra))
                )


def local_zone() -> str:
    """The machine's IANA zone name (TZ, then /etc/localtime, then /etc/timezone), else 'UTC'."""
    tz = os.environ.get("TZ", "").lstrip(":")
    candidates = [tz] if tz else []
    try:
        link = os.readlink("/etc/localtime")
        if "zoneinfo/" in link:
            candidates.append(link.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        try:
            ZoneInfo(name)
            return "UTC" if name in ("Etc/UTC", "UTC", "Etc/Universal", "Zulu") else name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def zone_of(table: Table) -> tuple[str, bool]:
    """(zone, write Z): fluentd's utc / localtime / timezone / timekey_zone / timekey_use_utc."""
    utc = table.flag("utc", "timekey_use_utc", default=False)
    localtime = table.flag("localtime", default=not utc)
    name = table.text("timezone", "timekey_zone")
    if name:
        m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", name)
        if m:
            if (m.group(3) or "00") != "00":
                raise table.fail("timezone", name, "a whole-hour offset or an IANA zone name")
            hours = int(m.group(2))
            # Etc/GMT signs are inverted: Etc/GMT-9 is nine hours east of UTC.
            name = "UTC" if hours == 0 else f"Etc/GMT{'-' if m.group(1) == '+' else '+'}{hours}"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise table.fail("timezone", name, "an IANA zone name such as 'Asia/Tokyo' or an offset '+0900'")
        return name, False
    if utc or not localtime:
        return "UTC", True
    return local_zone(), False


def timekey_of(fmt: str) -> int:
    """The slice length a time_slice_format implies, as fluentd's compat layer derives timekey."""
    if re.search(r"%[-_0^#]?[SsTrcXL]", fmt):
        return 1
    if re.search(r"%[-_0^#]?[MR]", fmt):
        return 60
    if re.search(r"%[-_0^#]?[HIkl]", fmt):
        return 3600
    return 86400


def format_of(timekey: int) -> str:
    """fluentd's timekey_to_timeformat."""
    if timekey < 60:
        return "%Y%m%d%H%M%S"
    if timekey < 3600:
        return "%Y%m%d%H%M"
    if timekey < 86400:
        return "%Y%m%d%H"
    return "%Y%m%d"
