"""Formatting records into out_s3/out_file lines, naming objects, and shipping chunks.

Lines are `time<TAB>tag<TAB>json` (fluentd's out_file format), built for a whole batch with
polars: the time column in ISO-8601 with the offset of the configured zone, the record as JSON
without the time key, keys in the parser's order. Objects are named with out_s3's
`s3_object_key_format`; `%{index}` comes from a persisted per-prefix counter (HEAD-checked once
when `check_object` is on) and is stored with the chunk before the first upload, so a retry
after a crash replaces the same object instead of adding a duplicate.
"""

from __future__ import annotations

import io
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo

import orjson
import polars as pl
from isal import igzip

from tailrace.agent.buffer import Buffer, Chunk, Part
from tailrace.agent.config import MatchConfig
from tailrace.agent.parsers import Parsed
from tailrace.storage import Location

ISO = "%Y-%m-%dT%H:%M:%S%:z"
ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def _slice_start(first: datetime, timekey: int, zone: ZoneInfo) -> float:
    dt = first.astimezone(zone)
    if timekey >= 86400:
        dt = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    elif timekey >= 3600:
        dt = dt.replace(minute=0, second=0, microsecond=0)
    elif timekey >= 60:
        dt = dt.replace(second=0, microsecond=0)
    else:
        dt = dt.replace(microsecond=0)
    return dt.timestamp()


def _strip_absent(json_col: pl.Series, keys: tuple[str, ...]) -> pl.Series:
    """Drop `"key":null` members: fluentd's RegexpParser leaves unmatched groups out.

    Safe on compact JSON text: inside a string every quote is escaped, so `,"k":null` can only
    be a member (and the literal null is always followed by `,` or `}`)."""
    alt = "|".join(re.escape(k) for k in keys)
    return (
        json_col.str.replace_all(f',"(?:{alt})":null', "")
        .str.replace(f'^\\{{"(?:{alt})":null,', "{")
        .str.replace(f'^\\{{"(?:{alt})":null\\}}', "{}")
    )


class Formatter:
    """Records of one [[match]] to line bytes grouped by time slice."""

    def __init__(self, conf: MatchConfig) -> None:
        self.conf = conf
        self.zone = ZoneInfo(conf.zone)
        self.time_format = conf.time_format or (ISO_Z if conf.utc_suffix else ISO)

    def _json(self, parsed: Parsed, tag: str, extra: Mapping[str, str], times: pl.Series) -> pl.Series:
        c = self.conf
        if parsed.frame is not None:
            frame = parsed.frame
            added: list[pl.Expr | pl.Series] = []
            for key, value in extra.items():
                added.append(pl.lit(value).alias(key))
            if c.include_tag_key:
                added.append(pl.lit(tag).alias(c.tag_key))
            if c.include_time_key:
                added.append(times.alias(c.time_key))
            if added:
                frame = frame.with_columns(added)
            if not frame.width:
                return pl.repeat("{}", len(frame), eager=True, dtype=pl.String)
            out = frame.select(pl.struct(pl.all()).struct.json_encode().alias("j")).to_series()
            nullable = [k for k in parsed.nullable_keys if k in frame.columns and frame[k].null_count()]
            return _strip_absent(out, tuple(nullable)) if nullable else out
        dicts = parsed.dicts or []
        if extra or c.include_tag_key or c.include_time_key:
            time_list = times.to_list()
            for i, rec in enumerate(dicts):
                rec.update(extra)
                if c.include_tag_key:
                    rec[c.tag_key] = tag
                if c.include_time_key:
                    rec[c.time_key] = time_list[i]
        return pl.Series("j", [orjson.dumps(r).decode() for r in dicts], dtype=pl.String)

    def parts(self, parsed: Parsed, tag: str, extra: Mapping[str, str] | None = None) -> list[Part]:
        """The formatted lines of a parsed batch, one Part per time slice, in line order."""
        if not len(parsed):
            return []
        c = self.conf
        local = parsed.time.dt.convert_time_zone(c.zone)
        times = local.dt.strftime(self.time_format)
        json_col = self._json(parsed, tag, extra or {}, times)
        if c.format == "json":
            cols = [json_col]
        elif c.format == "single_value":
            source = parsed.frame if parsed.frame is not None else pl.DataFrame(parsed.dicts or [])
            cols = [source[c.message_key].cast(pl.String) if c.message_key in source.columns else json_col]
        else:
            cols = [times] if c.output_time else []
            if c.output_tag:
                cols.append(pl.repeat(tag, len(json_col), eager=True, dtype=pl.String))
            cols.append(json_col)
        names = [f"c{i}" for i in range(len(cols))]
        slices = local.dt.strftime(c.time_slice_format)
        table = pl.DataFrame(
            [slices.alias("slice"), parsed.time.alias("time")]
            + [s.alias(n) for s, n in zip(cols, names, strict=True)]
        )
        groups = [table] if slices.n_unique() == 1 else table.partition_by("slice", maintain_order=True)
        out = []
        for g in groups:
            buf = io.BytesIO()
            # quote_style never: the JSON is already escaped, and the delimiter is one character.
            g.select(names).write_csv(buf, include_header=False, quote_style="never", separator=c.delimiter)
            start = _slice_start(g["time"][0], c.timekey, self.zone)
            out.append(Part(tag, g["slice"][0], start, buf.getvalue(), len(g)))
        return out


# --- object keys --------------------------------------------------------------------------

_TOKEN = "\x00{}\x00"


class KeyTemplate:
    """out_s3's s3_object_key_format: %{path} %{time_slice} %{index} %{file_extension}
    %{hostname} %{hex_random} %{uuid_flush} %{chunk_id}, ${tag} ${tag[N]}, and strftime codes
    taken from the chunk's time slice."""

    def __init__(self, conf: MatchConfig, prefix: str, hostname: str) -> None:
        self.conf = conf
        self.prefix = prefix
        self.hostname = hostname
        self.zone = ZoneInfo(conf.zone)
        self.uses_index = "%{index}" in conf.object_key_format

    def render(self, chunk: Chunk, index: int | None) -> str:
        c = self.conf
        values = {
            "path": self.prefix,
            "time_slice": chunk.slice,
            "file_extension": c.file_extension,
            "hostname": self.hostname,
            "hex_random": chunk.id[::-1][: c.hex_random_length],
            "uuid_flush": str(uuid.uuid5(uuid.NAMESPACE_URL, chunk.id)),
            "chunk_id": chunk.id,
            "index": "\x00INDEX\x00" if index is None else c.index_format % index,
        }
        text = re.sub(
            r"%\{(\w+)\}",
            lambda m: _TOKEN.format(m.group(1)) if m.group(1) in values else m.group(0),
            c.object_key_format,
        )
        parts = chunk.tag.split(".")
        text = re.sub(
            r"\$\{tag\[(-?\d+)\]\}",
            lambda m: parts[int(m.group(1))] if -len(parts) <= int(m.group(1)) < len(parts) else "",
            text,
        )
        text = text.replace("${tag}", chunk.tag)
        if "%" in text:
            text = (
                datetime.fromtimestamp(chunk.slice_start, self.zone)
                .strftime(text.replace("%%", "\x00PCT\x00"))
                .replace("\x00PCT\x00", "%")
            )
        return re.sub("\x00(\\w+)\x00", lambda m: values[m.group(1)], text)


# --- sinks ------------------------------------------------------------------------------------


class Sink(Protocol):
    def exists(self, key: str) -> bool:
        """Whether an object with this key is already there (for %{index} and check_object)."""
        ...

    def put(self, key: str, path: Path, *, gzip: bool) -> None:
        """Store the file's bytes under key, atomically; raises on failure."""
        ...

    def describe(self, key: str) -> str:
        """Where key lands, for messages."""
        ...

    @property
    def prefix(self) -> str:
        """The key prefix objects are written under (the %{index} counters are per prefix)."""
        ...


@dataclass
class StoreSink:
    """An object store location: the embedded directory, S3 over boto3, or a local path."""

    location: Location

    @property
    def prefix(self) -> str:
        key = self.location.key
        if self.location.uri.endswith("/") and key and not key.endswith("/"):
            key += "/"
        return key

    def exists(self, key: str) -> bool:
        return self.location.store.head(self.location.bucket, key) is not None

    def put(self, key: str, path: Path, *, gzip: bool) -> None:
        self.location.store.put(self.location.bucket, key, path)

    def describe(self, key: str) -> str:
        if self.location.bucket:
            return f"s3://{self.location.bucket}/{key}"
        return "/" + key


class StdoutSink:
    """fluentd's out_stdout: prints the lines (debugging; nothing is kept)."""

    prefix = ""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def exists(self, key: str) -> bool:
        return False

    def put(self, key: str, path: Path, *, gzip: bool) -> None:
        data = path.read_bytes()
        if gzip:
            data = igzip.decompress(data)
        self.stream.write(data.decode("utf-8", "backslashreplace"))
        self.stream.flush()

    def describe(self, key: str) -> str:
        return "stdout"


# --- shipping ---------------------------------------------------------------------------------


@dataclass
class ShipResult:
    chunk: Chunk
    uri: str
    error: str | None = None


class Output:
    """Ships the queued chunks of one buffer, oldest first, with capped exponential backoff."""

    def __init__(self, conf: MatchConfig, buffer: Buffer, sink: Sink, hostname: str) -> None:
        self.conf = conf
        self.buffer = buffer
        self.sink = sink
        self.keys = KeyTemplate(conf, sink.prefix, hostname)
        self.failures = 0
        self.next_try = 0.0
        self.last_error: str | None = None
        self.shipped_objects = 0
        self.shipped_bytes = 0
        self.retries = 0

    def _assign(self, chunk: Chunk) -> None:
        if not self.keys.uses_index:
            self.buffer.assign(chunk, self.keys.render(chunk, None), None, None)
            return
        counter = self.keys.render(chunk, None)
        index = self.buffer.next_index.get(counter, 0)
        if self.conf.check_object:
            # Once per chunk, before its first upload: never reuse a key someone else wrote.
            while self.sink.exists(self.keys.render(chunk, index)):
                index += 1
        self.buffer.assign(chunk, self.keys.render(chunk, index), index, counter)

    def ship_one(self, now: float, *, force: bool = False) -> ShipResult | None:
        """Upload the oldest queued chunk if the backoff allows; None when there is nothing to do."""
        if not force and now < self.next_try:
            return None
        chunk = self.buffer.next_queued()
        if chunk is None:
            return None
        try:
            if chunk.key is None:
                self._assign(chunk)
            assert chunk.key is not None
            self.sink.put(chunk.key, chunk.data_path, gzip=self.conf.store_as == "gzip")
        except Exception as exc:  # any store failure is retried; nothing is dropped
            self.failures += 1
            self.retries += 1
            c = self.conf
            wait = min(
                c.retry_wait * c.retry_exponential_backoff_base ** (self.failures - 1), c.retry_max_interval
            )
            self.next_try = now + wait
            self.last_error = f"{type(exc).__name__}: {exc}"
            return ShipResult(chunk, chunk.key or "", self.last_error)
        uri = self.sink.describe(chunk.key)
        self.failures = 0
        self.next_try = 0.0
        self.shipped_objects += 1
        self.shipped_bytes += chunk.size
        self.buffer.complete(chunk)
        return ShipResult(chunk, uri)

    def status(self, now: float) -> dict[str, Any]:
        return {
            "id": self.conf.id,
            "pattern": self.conf.pattern,
            "type": self.conf.type,
            "path": self.conf.path,
            "buffer_bytes": self.buffer.total_size,
            "chunks_queued": self.buffer.queued,
            "objects_shipped": self.shipped_objects,
            "bytes_shipped": self.shipped_bytes,
            "retries": self.retries,
            "retry_in": max(self.next_try - now, 0.0) if self.failures else 0.0,
            "last_error": self.last_error,
        }
