"""Where attempt logs go: `<pipelineLogUri>/<pipelineId>/<component>/@<id>/@<id>_Attempt=N/`
(the service's layout), or the same layout under `<home>/logs/` when no pipelineLogUri is set."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from tailrace.ids import attempt_id, path_segment
from tailrace.runtime.context import AttemptOutcome
from tailrace.storage import DEFAULT_OWNER, Storage

LOG_FILE = "attempt.log"


def attempt_log_dir(
    *,
    pipeline_log_uri: str | None,
    home: Path,
    pipeline_id: str,
    component_id: str,
    instance_id: str,
    attempt: int,
) -> str:
    base = pipeline_log_uri.rstrip("/") if pipeline_log_uri else (home / "logs").resolve().as_posix()
    parts = (component_id, instance_id, attempt_id(instance_id, attempt))
    return f"{base}/{pipeline_id}/" + "".join(path_segment(p) + "/" for p in parts)


def attempt_log_uri(**kw: object) -> str:
    return attempt_log_dir(**kw) + LOG_FILE  # type: ignore[arg-type]


def closing_text(text: str, outcome: AttemptOutcome) -> str:
    """The attempt's log with its final status appended."""
    return text + closing_suffix(text, outcome)


def closing_suffix(tail: str, outcome: AttemptOutcome) -> str:
    """What goes at the end of a log whose last part is `tail`: the final status. A stack trace
    stays in the attempt's errorStackTrace field (`tailrace logs --debug` shows it)."""
    out = ""
    status = f"status: {outcome.status}" + (f" ({outcome.error_message})" if outcome.error_message else "")
    return out + status + "\n"


def is_server_log(uri: str, home: Path) -> bool:
    """True when uri is inside the server's own log directory (`<home>/logs`), where the
    server writes and reads for everyone; any other place is the owner's (pipelineLogUri)."""
    parsed = urlparse(uri)
    if parsed.scheme.lower() not in ("", "file") or parsed.query or parsed.fragment or "\x00" in uri:
        return False
    path = Path(unquote(parsed.path) if parsed.scheme else uri)
    if not path.is_absolute():
        return False
    return path.resolve().is_relative_to((home / "logs").resolve())


def log_storage(storage: Storage, uri: str, home: Path, owner: str) -> Storage:
    """The storage view to read or write a log at uri with: the server's for its own log
    directory, the owner's for a pipelineLogUri (so `file:///proc/self/environ?` is refused)."""
    return storage if is_server_log(uri, home) else storage.for_owner(owner or DEFAULT_OWNER)
