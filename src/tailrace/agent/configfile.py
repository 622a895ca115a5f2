"""Reading agent.toml into an AgentConfig: fluentd key names (v0.12 and v1), defaults,
`${hostname}` expansion, and errors that name the table and the key."""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tailrace.agent.config import (
    FORMATS,
    OUTPUTS,
    PARSERS,
    STORE_AS,
    AgentConfig,
    MatchConfig,
    MiB,
    ParseConfig,
    SourceConfig,
    SystemConfig,
    Table,
    format_of,
    timekey_of,
    zone_of,
)
from tailrace.agent.cwmetrics import metrics_config
from tailrace.errors import ConfigError, did_you_mean

# --- loading ------------------------------------------------------------------------------


def _parse_config(table: Table, parent: Table | None = None) -> ParseConfig:
    """Parser keys live on the source (v0.12 style) or in a [source.parse] table (v1 style)."""
    fmt = table.text("@type", "type") if parent is not None else table.text("format")
    expression = table.text("expression")
    if fmt and len(fmt) >= 2 and fmt.startswith("/") and fmt.endswith("/"):
        expression, fmt = fmt[1:-1], "regex"  # td-agent's `format /^(?<host>...)$/`
    if not fmt:
        raise ConfigError(f"{table.where}: 'format' is required ({', '.join(PARSERS)} or /regex/)")
    if fmt not in PARSERS:
        raise ConfigError(
            f"{table.where}: 'format' has value {fmt!r}; expected one of {', '.join(PARSERS)} or /regex/."
            + did_you_mean(fmt, PARSERS)
        )
    fmt = {"combined": "apache2", "regexp": "regex"}.get(fmt, fmt)
    if fmt == "regex" and expression:
        expression = (
            expression[1:-1] if expression.startswith("/") and expression.endswith("/") else expression
        )
    if fmt == "regex" and not expression:
        raise ConfigError(f"{table.where}: format 'regex' needs 'expression' with named groups")
    types: dict[str, str] = {}
    raw_types = table.raw("types")
    if isinstance(raw_types, str):
        for item in filter(None, (p.strip() for p in raw_types.split(","))):
            name, _, kind = item.partition(":")
            types[name.strip()] = kind.strip() or "string"
    elif isinstance(raw_types, Mapping):
        types = {str(k): str(v) for k, v in raw_types.items()}
    elif raw_types is not None:
        raise table.fail("types", raw_types, '"name:type,..." or a table')
    for name, kind in types.items():
        base = kind.split(":", 1)[0]
        if base not in ("string", "integer", "float", "bool", "time", "array"):
            raise table.fail("types", f"{name}:{kind}", "types integer, float, bool, string, time or array")
    default_key = "time"
    return ParseConfig(
        type=fmt,
        expression=expression,
        time_key=table.text("time_key", default=default_key) or default_key,
        time_format=table.text("time_format"),
        time_type=table.choice("time_type", choices=("string", "unixtime", "float"), default="string"),
        keep_time_key=table.flag("keep_time_key", default=False),
        types=types,
        null_value_pattern=table.text("null_value_pattern"),
        null_empty_string=table.flag("null_empty_string", default=False),
        message_key=table.text("message_key", default="message") or "message",
        delimiter=table.text("delimiter", default="\t") or "\t",
        label_delimiter=table.text("label_delimiter", default=":") or ":",
    )


_PARSE_KEYS = (
    "format",
    "expression",
    "time_key",
    "time_format",
    "time_type",
    "keep_time_key",
    "types",
    "null_value_pattern",
    "null_empty_string",
    "message_key",
    "delimiter",
    "label_delimiter",
)


def _source(raw: Mapping[str, Any], n: int, state_dir: Path, hostname: str, origin: str) -> SourceConfig:
    t = Table(raw, f"{origin}: [[source]] #{n}", hostname)
    kind = t.text("@type", "type", default="tail")
    if kind != "tail":
        raise ConfigError(f"{t.where}: 'type' has value {kind!r}; only 'tail' sources are supported")
    paths = tuple(
        os.path.abspath(os.path.expanduser(p.strip())) for p in t.req("path").split(",") if p.strip()
    )
    excl = t.raw("exclude_path")
    if isinstance(excl, str):
        excl = [excl]
    if excl is not None and not (isinstance(excl, list) and all(isinstance(x, str) for x in excl)):
        raise t.fail("exclude_path", excl, "a list of globs")
    sid = t.text("@id", "id", default=f"tail.{n}") or f"tail.{n}"
    pos = t.text("pos_file")
    nested = raw.get("parse")
    if isinstance(nested, Mapping):
        t.used.add("parse")
        parse = _parse_config(Table(nested, f"{t.where} [parse]", hostname), parent=t)
        if t.raw("format") is not None:
            raise ConfigError(f"{t.where}: give the parser as 'format' or as a [parse] table, not both")
    else:
        parse = _parse_config(t)
    max_line = t.size("max_line_size", default=32 * MiB)
    src = SourceConfig(
        id=sid,
        paths=paths,
        exclude_paths=tuple(excl or ()),
        pos_file=Path(pos).expanduser().absolute()
        if pos
        else state_dir / "pos" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', sid)}.pos",
        tag=t.req("tag"),
        parse=parse,
        read_from_head=t.flag("read_from_head", default=False),
        rotate_wait=t.duration("rotate_wait", default=5.0),
        refresh_interval=t.duration("refresh_interval", default=60.0),
        max_line_size=max_line or 32 * MiB,
        read_block_size=t.size("read_block_size", "read_bytes_limit", default=2 * MiB) or 2 * MiB,
        path_key=t.text("path_key"),
    )
    t.check_unknown()
    return src


def _match(
    raw: Mapping[str, Any], n: int, state_dir: Path, hostname: str, origin: str
) -> tuple[MatchConfig, list[str]]:
    t = Table(raw, f"{origin}: [[match]] #{n}", hostname)
    warnings: list[str] = []
    pattern = t.req("pattern", "tag")
    kind = t.choice("@type", "type", choices=OUTPUTS, default="store")
    raw_buf = raw.get("buffer")
    buf: Mapping[str, Any] = raw_buf if isinstance(raw_buf, Mapping) else {}
    if buf:
        t.used.add("buffer")
    b = Table({**buf, **{k: v for k, v in raw.items() if k not in buf}}, t.where, hostname)
    b.used = t.used  # one table for unknown-key checks
    path = t.text("path", default="") or ""
    bucket = t.text("s3_bucket")
    if kind == "s3":
        if bucket:
            path = f"s3://{bucket}/{path.lstrip('/')}"
        kind = "store"
    if kind in ("store", "file") and not path:
        raise ConfigError(f"{t.where}: 'path' is required (s3://bucket/prefix/, file://dir/ or a path)")
    fmt = t.text("time_slice_format", fmt=True)
    timekey_raw = b.raw("timekey")
    if fmt and timekey_raw is not None:
        raise ConfigError(f"{t.where}: give 'time_slice_format' or 'timekey', not both")
    if fmt:
        timekey = timekey_of(fmt)
    else:
        timekey = int(b.duration("timekey", default=86400.0))
        fmt = format_of(timekey)
    zone, utc_suffix = zone_of(t)
    flush_interval = b.duration("flush_interval", default=60.0)
    interval_given = b.raw("flush_interval") is not None
    mode = b.choice("flush_mode", choices=("default", "lazy", "interval", "immediate"), default="default")
    if mode == "default":
        # fluentd: an explicit flush_interval switches a time-keyed buffer to interval flushing.
        mode = "interval" if interval_given else "lazy"
        if interval_given and b.raw("time_slice_wait", "timekey_wait") is not None:
            warnings.append(
                f"{t.where}: flush_interval is set, so chunks are shipped every {flush_interval:g}s "
                "(several objects per slice) and time_slice_wait only delays the last one; "
                'set flush_mode = "lazy" for one object per slice, as fluentd does'
            )
    store_as = t.choice("store_as", choices=tuple(STORE_AS), default="gzip" if kind == "store" else "text")
    key_default = (
        "%{path}.%{time_slice}_%{index}.%{file_extension}"
        if kind == "file"
        else "%{path}%{time_slice}_%{index}.%{file_extension}"
    )
    mid = t.text("@id", "id", default=f"match.{n}") or f"match.{n}"
    buffer_path = b.text("buffer_path", "path" if buf else "buffer_path")
    if buf and "path" in buf:
        buffer_path = str(buf["path"])
    level = t.whole("compression_level", default=1)
    if not 0 <= level <= 3 and store_as == "gzip":
        raise t.fail("compression_level", level, "0 to 3 (isal levels)")
    b.choice("buffer_type", "@buffer_type", choices=("file",), default="file")
    if b.raw("retry_forever") is False:
        warnings.append(f"{t.where}: retry_forever = false is ignored: chunks are retried until shipped")
    m = MatchConfig(
        id=mid,
        pattern=pattern,
        type=kind,
        path=path,
        object_key_format=t.text("s3_object_key_format", "object_key_format", default=key_default)
        or key_default,
        time_slice_format=fmt,
        timekey=timekey,
        timekey_wait=b.duration("time_slice_wait", "timekey_wait", default=600.0),
        zone=zone,
        utc_suffix=utc_suffix,
        buffer_path=Path(buffer_path).expanduser().absolute()
        if buffer_path
        else state_dir / "buffer" / re.sub(r"[^A-Za-z0-9_.-]", "_", mid),
        flush_mode=mode,
        flush_interval=flush_interval,
        flush_at_shutdown=b.flag("flush_at_shutdown", default=True),
        chunk_limit_size=b.size("chunk_limit_size", "buffer_chunk_limit", default=256 * MiB) or 256 * MiB,
        chunk_limit_records=b.size("chunk_limit_records", default=None),
        total_limit_size=b.size("total_limit_size", default=8 * 1024 * MiB) or 8 * 1024 * MiB,
        queued_chunks_limit_size=b.size("queued_chunks_limit_size", "buffer_queue_limit", default=None),
        store_as=store_as,
        compression_level=level,
        retry_wait=b.duration("retry_wait", default=1.0),
        retry_exponential_backoff_base=float(b.raw("retry_exponential_backoff_base") or 2.0),
        retry_max_interval=b.duration("retry_max_interval", default=60.0),
        check_object=t.flag("check_object", default=True),
        index_format=t.text("index_format", default="%d") or "%d",
        hex_random_length=t.whole("hex_random_length", default=4),
        format=t.choice("format", choices=FORMATS, default="out_file"),
        delimiter={"TAB": "\t", "SPACE": " ", "COMMA": ","}.get(
            t.text("delimiter", default="TAB") or "TAB", t.text("delimiter") or "\t"
        ),
        output_time=t.flag("output_time", default=True),
        output_tag=t.flag("output_tag", default=True),
        time_format=t.text("time_format"),
        include_time_key=t.flag("include_time_key", default=False),
        time_key=t.text("time_key", default="time") or "time",
        include_tag_key=t.flag("include_tag_key", default=False),
        tag_key=t.text("tag_key", default="tag") or "tag",
        message_key=t.text("message_key", default="message") or "message",
        s3_endpoint=t.text("s3_endpoint"),
        s3_region=t.text("s3_region"),
        aws_key_id=t.text("aws_key_id"),
        aws_sec_key=t.text("aws_sec_key"),
    )
    b.raw("retry_forever", "retry_type", "flush_thread_count")
    t.check_unknown()
    return m, warnings


def parse_config(
    data: Mapping[str, Any], *, origin: str = "<config>", home: Path, hostname: str | None = None
) -> AgentConfig:
    """Validate a decoded TOML document into an AgentConfig."""
    host = hostname or socket.gethostname()
    for key in data:
        if key not in ("source", "match", "system", "metrics"):
            raise ConfigError(
                f"{origin}: unknown top-level key '{key}'."
                + did_you_mean(key, ("source", "match", "system", "metrics"))
            )
    sys_raw = data.get("system", {})
    if not isinstance(sys_raw, Mapping):
        raise ConfigError(f"{origin}: [system] must be a table")
    st = Table(sys_raw, f"{origin}: [system]", host)
    host = st.text("hostname", default=host) or host
    st.hostname = host
    state_dir = (
        Path(st.text("state_dir", default=str(home / "agent")) or home / "agent").expanduser().absolute()
    )
    system = SystemConfig(
        state_dir=state_dir,
        hostname=host,
        error_path=st.text("error_path", default=str(state_dir / "errors") + "/")
        or str(state_dir / "errors"),
        monitor_bind=st.text("monitor_bind"),
        status_interval=st.duration("status_interval", default=1.0),
        poll_interval=st.duration("poll_interval", default=0.25),
    )
    st.check_unknown()
    raw_sources = data.get("source", [])
    raw_matches = data.get("match", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{origin}: at least one [[source]] table is required")
    if not isinstance(raw_matches, list) or not raw_matches:
        raise ConfigError(f"{origin}: at least one [[match]] table is required")
    sources = tuple(_source(s, i + 1, state_dir, host, origin) for i, s in enumerate(raw_sources))
    warnings: list[str] = []
    matches: list[MatchConfig] = []
    for i, raw in enumerate(raw_matches):
        m, w = _match(raw, i + 1, state_dir, host, origin)
        matches.append(m)
        warnings += w
    cfg = AgentConfig(sources=sources, matches=tuple(matches), system=system, origin=origin)
    _check_unique(cfg)
    for s in sources:
        probe = s.tag.replace("*", "x")
        if "*" not in s.tag and cfg.match_for(probe) is None:
            raise ConfigError(
                f"{origin}: [[source]] '{s.id}' has tag '{s.tag}', which no [[match]] pattern matches "
                f"({', '.join(m.pattern for m in matches)})"
            )
    met_raw = data.get("metrics", {})
    if not isinstance(met_raw, Mapping):
        raise ConfigError(f"{origin}: [metrics] must be a table")
    mt = Table(met_raw, f"{origin}: [metrics]", host)
    metrics = metrics_config(mt)
    mt.check_unknown()
    return AgentConfig(
        sources=sources,
        matches=tuple(matches),
        system=system,
        origin=origin,
        warnings=tuple(warnings),
        metrics=metrics,
    )


def _check_unique(cfg: AgentConfig) -> None:
    seen: dict[str, str] = {}
    for s in cfg.sources:
        key = str(s.pos_file.resolve())
        if key in seen:
            raise ConfigError(f"{cfg.origin}: sources '{seen[key]}' and '{s.id}' share pos_file {s.pos_file}")
        seen[key] = s.id
    bufs: dict[str, str] = {}
    for m in cfg.matches:
        key = str(m.buffer_path.resolve())
        if key in bufs:
            raise ConfigError(
                f"{cfg.origin}: matches '{bufs[key]}' and '{m.id}' share buffer_path {m.buffer_path}"
            )
        bufs[key] = m.id


def load_config(path: Path, *, home: Path, hostname: str | None = None) -> AgentConfig:
    """Read and validate an agent TOML file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read agent config {path}: {exc.strerror}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}")
    return parse_config(data, origin=str(path), home=home, hostname=hostname)


def render_toml(values: Mapping[str, Any]) -> str:
    """The effective config as TOML (the shapes AgentConfig.effective produces)."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + "}"
        s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n")
        return f'"{s}"'

    def body(table: Mapping[str, Any]) -> list[str]:
        lines = []
        for k, v in table.items():
            if isinstance(v, Mapping) and v:
                continue
            lines.append(f"{k} = {scalar(v)}")
        for k, v in table.items():
            if isinstance(v, Mapping) and v:
                lines.append(f"{k} = {scalar(v)}")
        return lines

    out = ["[system]", *body(values["system"]), ""]
    for name in ("source", "match"):
        for table in values[name]:
            out += [f"[[{name}]]", *body(table), ""]
    return "\n".join(out)
