"""Data nodes as activities see them: where the data is, and its columns and format.

HiveActivity stages S3 inputs and outputs as tables `${input1}`, `${output1}`, ... read and
written through a CSV SerDe (as the service did); ShellCommandActivity with `stage` gets
local directories in `INPUTn_STAGING_DIR` / `OUTPUTn_STAGING_DIR`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailrace.definition import ResolvedObject
from tailrace.errors import LocatedError, Location
from tailrace.storage import Storage


class ActivityError(LocatedError):
    """An activity cannot run as defined (missing input, unsupported node, bad format)."""


SEPARATORS = {"TSV": "\t", "CSV": ","}


@dataclass(frozen=True, kw_only=True)
class NodeData:
    component_id: str
    type: str
    uri: str
    field: str
    """directoryPath or filePath: which field gave the uri (for messages)."""
    is_directory: bool
    columns: tuple[tuple[str, str], ...]
    format_type: str | None
    separator: str


def _columns(fmt: ResolvedObject) -> tuple[tuple[str, str], ...]:
    cols: list[tuple[str, str]] = []
    for text in fmt.strings("column"):
        parts = text.split()
        if not parts:
            continue
        cols.append((parts[0], parts[1].lower() if len(parts) > 1 else "string"))
    return tuple(cols)


def unescape_separator(text: str) -> str:
    """Separators are written as '\\t', '\\u0001' or literally."""
    if len(text) > 1 and text.startswith("\\"):
        try:
            return text.encode("latin-1").decode("unicode_escape")
        except UnicodeDecodeError:
            return text
    return text


def node_data(node: ResolvedObject, *, uri: str | None, field: str, resolved: Any) -> NodeData:
    if node.type not in ("S3DataNode",):
        raise ActivityError(
            f"{node.type} cannot be staged here; only S3DataNode inputs and outputs are (file:// and plain "
            "paths work in directoryPath/filePath too)",
            Location(object_id=node.id, field="type"),
        )
    if uri is None:
        raise ActivityError(
            "an S3DataNode needs 'directoryPath' or 'filePath'",
            Location(object_id=node.id, field="directoryPath"),
        )
    fmt_id = node.ref("dataFormat")
    fmt = resolved.get(fmt_id) if fmt_id else None
    columns: tuple[tuple[str, str], ...] = ()
    separator = "\t"
    fmt_type = None
    if fmt is not None:
        fmt_type = fmt.type
        if fmt.type not in ("TSV", "CSV", "Custom", "DynamoDBExportDataFormat"):
            raise ActivityError(
                f"{fmt.type} data formats cannot be staged here (TSV, CSV, Custom and, for "
                "HiveCopyActivity, DynamoDBExportDataFormat can)",
                Location(object_id=node.id, field="dataFormat"),
            )
        columns = _columns(fmt)
        sep = fmt.string("columnSeparator")
        separator = unescape_separator(sep) if sep else SEPARATORS.get(fmt.type or "", "\t")
    return NodeData(
        component_id=node.id,
        type=node.type or "",
        uri=uri,
        field=field,
        is_directory=field == "directoryPath",
        columns=columns,
        format_type=fmt_type,
        separator=separator,
    )


def require_exists(storage: Storage, data: NodeData, *, role: str) -> None:
    """A missing input folder is an error that names the node, its field and the URI; so is an
    input holding archived objects (GLACIER, DEEP_ARCHIVE) that are not restored: the activity
    fails before it runs, naming the first such object, its class and the restore command."""
    if not storage.exists(data.uri):
        raise ActivityError(
            f"{role} {data.uri} does not exist (no files there); nothing to read",
            Location(object_id=data.component_id, field=data.field),
        )
    store = storage.resolve(data.uri).store
    archived = [(info, cls) for info in storage.list_files(data.uri) if (cls := store.unreadable_class(info))]
    if archived:
        info, cls = archived[0]
        uri = f"s3://{info.bucket}/{info.key}"
        more = (
            f" (and {len(archived) - 1} more archived object(s) under {data.uri})"
            if len(archived) > 1
            else ""
        )
        raise ActivityError(
            f"{role} object {uri} is in storage class {cls} and cannot be read until restored: "
            f"tailrace s3 restore {uri} --days N{more}",
            Location(object_id=data.component_id, field=data.field),
        )


def download(storage: Storage, data: NodeData, target: Path) -> int:
    """Copy the node's files into the local directory target; returns the number of files."""
    target.mkdir(parents=True, exist_ok=True)
    loc = storage.resolve(data.uri)
    count = 0
    prefix = loc.key.rstrip("/") + "/" if data.is_directory else loc.key.rsplit("/", 1)[0] + "/"
    for info in storage.list_files(data.uri):
        rel = info.key[len(prefix) :] if info.key.startswith(prefix) else info.key.rsplit("/", 1)[-1]
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        local = loc.store.local_path(info.bucket, info.key)
        if local is not None:
            shutil.copyfile(local, dest)
        else:
            dest.write_bytes(loc.store.get(info.bucket, info.key))
        count += 1
    return count


def upload(storage: Storage, data: NodeData, source: Path) -> None:
    """Publish a local output directory as the node's directory, atomically where possible."""
    if data.is_directory:
        storage.commit_directory(data.uri, source)
        return
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if len(files) != 1:
        raise ActivityError(
            f"output filePath {data.uri} takes exactly one file; the activity produced {len(files)}",
            Location(object_id=data.component_id, field="filePath"),
        )
    loc = storage.resolve(data.uri)
    loc.store.put(loc.bucket, loc.key, files[0])
