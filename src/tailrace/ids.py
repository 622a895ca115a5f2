"""Identifiers built the way the service built them; deterministic so planning is idempotent."""

from __future__ import annotations

import secrets
import string
from datetime import datetime

from tailrace.clock import format_dp

_ALNUM = string.ascii_uppercase + string.digits


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
