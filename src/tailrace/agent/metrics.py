"""Per-source counters, the status document, its Prometheus text form, and a small HTTP endpoint."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class SourceStats:
    id: str
    tag: str
    paths: tuple[str, ...]
    bytes_read: int = 0
    lines_read: int = 0
    lines_parsed: int = 0
    lines_malformed: int = 0
    lines_buffered: int = 0
    lines_shipped: int = 0
    malformed_shipped: int = 0
    lag_bytes: int = 0
    files: int = 0
    paused: str | None = None
    last_error: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))

    def event(self, when: float, kind: str, message: str) -> None:
        self.events.append({"time": when, "kind": kind, "message": message})
        if kind in ("error", "gone", "disk_full"):
            self.last_error = message

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tag": self.tag,
            "paths": list(self.paths),
            "bytes_read": self.bytes_read,
            "lines_read": self.lines_read,
            "lines_parsed": self.lines_parsed,
            "lines_malformed": self.lines_malformed,
            "lines_buffered": self.lines_buffered,
            "lines_shipped": self.lines_shipped,
            "malformed_shipped": self.malformed_shipped,
            "lag_bytes": self.lag_bytes,
            "files": self.files,
            "paused": self.paused,
            "last_error": self.last_error,
            "malformed_reasons": dict(self.reasons),
            "events": list(self.events),
        }


_SOURCE_METRICS = [
    ("bytes_read", "counter", "read_bytes_total", "Bytes read from the source's files."),
    ("lines_read", "counter", "read_lines_total", "Complete lines read."),
    ("lines_parsed", "counter", "parsed_lines_total", "Lines the parser turned into records."),
    ("lines_malformed", "counter", "malformed_lines_total", "Lines sent to the error sink."),
    ("lines_buffered", "counter", "buffered_lines_total", "Records committed to the durable buffer."),
    ("lines_shipped", "counter", "shipped_lines_total", "Records in objects the store accepted."),
    ("malformed_shipped", "counter", "malformed_shipped_lines_total", "Error records shipped."),
    ("lag_bytes", "gauge", "lag_bytes", "Bytes of the watched files not yet committed."),
    ("files", "gauge", "files_watched", "Files open for this source."),
]
_OUTPUT_METRICS = [
    ("buffer_bytes", "gauge", "buffer_bytes", "Bytes in staged and queued chunks."),
    ("chunks_queued", "gauge", "chunks_queued", "Chunks waiting to be shipped."),
    ("objects_shipped", "counter", "shipped_objects_total", "Objects written to the store."),
    ("bytes_shipped", "counter", "shipped_bytes_total", "Bytes written to the store."),
    ("retries", "counter", "retries_total", "Failed uploads (each is retried)."),
    ("retry_in", "gauge", "retry_wait_seconds", "Seconds until the next retry (0 when healthy)."),
]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(status: Mapping[str, Any]) -> str:
    """The status document in Prometheus text exposition format 0.0.4."""
    out: list[str] = []
    groups = (
        ("source", status.get("sources", []), _SOURCE_METRICS),
        ("output", status.get("outputs", []), _OUTPUT_METRICS),
    )
    for kind, items, metrics in groups:
        for key, mtype, name, help_text in metrics:
            full = f"tailrace_agent_{kind}_{name}" if kind == "output" else f"tailrace_agent_{name}"
            out.append(f"# HELP {full} {help_text}")
            out.append(f"# TYPE {full} {mtype}")
            for item in items:
                labels = f'{kind}="{_label(item["id"])}"'
                if kind == "source":
                    labels += f',tag="{_label(item["tag"])}"'
                out.append(f"{full}{{{labels}}} {item.get(key) or 0}")
    out.append("# HELP tailrace_agent_paused Whether reading is paused (back-pressure or a full disk).")
    out.append("# TYPE tailrace_agent_paused gauge")
    for item in status.get("sources", []):
        out.append(f'tailrace_agent_paused{{source="{_label(item["id"])}"}} {1 if item.get("paused") else 0}')
    out.append("# HELP tailrace_agent_last_error_info The last error of a source or output, as a label.")
    out.append("# TYPE tailrace_agent_last_error_info gauge")
    for kind, items in (("source", status.get("sources", [])), ("output", status.get("outputs", []))):
        for item in items:
            if item.get("last_error"):
                out.append(
                    f'tailrace_agent_last_error_info{{{kind}="{_label(item["id"])}",'
                    f'error="{_label(str(item["last_error"])[:200])}"}} 1'
                )
    out.append("# HELP tailrace_agent_up 1 while the agent runs.")
    out.append("# TYPE tailrace_agent_up gauge")
    out.append("tailrace_agent_up 1")
    return "\n".join(out) + "\n"


def write_status(path: Path, status: Mapping[str, Any]) -> None:
    """Replace the status file (rename; no fsync: it is rewritten every second)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1, default=str))
    os.replace(tmp, path)


class MonitorServer:
    """GET /metrics (Prometheus text) and GET /api/status (JSON), like fluentd's monitor_agent."""

    def __init__(self, bind: str, status: Callable[[], Mapping[str, Any]]) -> None:
        host, _, port = bind.rpartition(":")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                snapshot = status()
                if self.path.startswith("/metrics"):
                    body, ctype = prometheus(snapshot).encode(), "text/plain; version=0.0.4"
                elif self.path.startswith(("/api/status", "/status")):
                    body, ctype = json.dumps(snapshot, default=str).encode(), "application/json"
                else:
                    self.send_error(404, "try /metrics or /api/status")
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="agent-monitor", daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
