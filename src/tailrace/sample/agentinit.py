"""`tailrace agent init`: a sample agent config and an access log to run it on, so the agent can
be tried as the README shows before pointing it at real logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tailrace.errors import UsageError
from tailrace.sample.accesslog import combined_line, hits

CONFIG_NAME = "agent.toml"
LOG_NAME = "logs/access_log"
START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)

TEMPLATE = """\
# A sample tailrace agent config (written by `tailrace agent init`); see docs/agent.md.
# It follows {log}, parses Apache lines and ships gzip objects, one per hour and host,
# to s3://sample-logs/access/ (the embedded store under $TAILRACE_HOME/s3 unless an S3
# endpoint is configured). Point `path` at your server's access log to ship real traffic.

[[source]]
type = "tail"
path = "{log}"
pos_file = "{state}/access.pos"
format = "apache"
tag = "apache.access"
read_from_head = true

[[match]]
pattern = "apache.*"
type = "store"
path = "s3://sample-logs/access/"
time_slice_format = "%Y%m%d/${{hostname}}-%H"
time_slice_wait = "10s"
buffer_path = "{state}/buffer"
store_as = "gzip"
"""


def write_sample(directory: Path, *, force: bool = False, hours: int = 2) -> list[Path]:
    """Write <directory>/agent.toml and <directory>/logs/access_log; returns their paths."""
    directory = directory.resolve()
    config = directory / CONFIG_NAME
    if config.exists() and not force:
        raise UsageError(f"{config} exists; pass --force to overwrite it, or --dir DIR")
    log = directory / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    state = directory / ".agent-state"
    with log.open("w", encoding="utf-8") as f:
        for hit in hits(START, START + timedelta(hours=hours), per_hour=120, seed=7):
            f.write(combined_line(hit) + "\n")
    config.write_text(TEMPLATE.format(log=log, state=state), encoding="utf-8")
    return [config, log]
