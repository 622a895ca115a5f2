"""Identifiers built the way the service built them; deterministic so planning is idempotent."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from datetime import datetime

from tailrace.clock import format_dp

_ALNUM = string.ascii_uppercase + string.digits
# What may not stand in a path segment: a separator, '%' (URIs are percent-decoded once: %2F
# would become '/'), control characters.
_UNSAFE_IN_SEGMENT = re.compile(r"[/\\%\x00-\x1f\x7f]")


def pipeline_id() -> str:
    """A new pipeline id: 'df-' and 19 upper-case alphanumerics, like df-00627471SOVYZEXAMPLE."""
    return "df-" + "".join(secrets.choice(_ALNUM) for _ in range(19))


def instance_id(component_id: str, scheduled_start: datetime) -> str:
    """'@archive_2012-12-24T00:00:00' for component 'archive'."""
    return f"@{component_id}_{format_dp(scheduled_start)}"


def attempt_id(instance: str, attempt: int) -> str:
    """'@archive_2012-12-24T00:00:00_Attempt=1'."""
    return f"{instance}_Attempt={attempt}"


def split_attempt_id(attempt: str) -> tuple[str, int]:
    """Inverse of attempt_id."""
    head, _, n = attempt.rpartition("_Attempt=")
    if not head or not n.isdigit():
        raise ValueError(f"not an attempt id: {attempt!r}")
    return head, int(n)


def task_id() -> str:
    """An opaque task id handed to a task runner (one per attempt claim)."""
    return secrets.token_urlsafe(24)


def path_segment(name: str) -> str:
    """An object, instance or attempt id as one directory name of logs and work directories.

    Ids come from an owner's definition and may hold '/', '..' or '%'; joined into a path as they
    are, `x/../../../tmp/f` would put the server's own files anywhere. Such an id becomes
    `id-<digest>` (stable, and nothing a path or a URI decodes); every other id is kept as is."""
    if name and not _UNSAFE_IN_SEGMENT.search(name) and name.strip("."):
        return name
    return "id-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
