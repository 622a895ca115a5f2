"""Where attempt logs go: `<pipelineLogUri>/<pipelineId>/<component>/@<id>/@<id>_Attempt=N/`
(the service's layout), or the same layout under `<home>/logs/` when no pipelineLogUri is set."""

from __future__ import annotations

from pathlib import Path

from tailrace.ids import attempt_id

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
    return f"{base}/{pipeline_id}/{component_id}/{instance_id}/{attempt_id(instance_id, attempt)}/"


def attempt_log_uri(**kw: object) -> str:
    return attempt_log_dir(**kw) + LOG_FILE  # type: ignore[arg-type]
