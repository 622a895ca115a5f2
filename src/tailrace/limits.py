"""Limits: what one owner may make the service do, and the size of what a definition may hold.

Set in the `[limits]` section of tailrace.toml (or `TAILRACE_LIMITS_<NAME>` in the environment);
every limit applies to each owner (access-key owner) separately. The definition limits default
to AWS Data Pipeline's documented account limits, so a definition accepted here is accepted there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tailrace.errors import ConfigError, did_you_mean


@dataclass(frozen=True, kw_only=True)
class Limits:
    # --- per owner: scheduling and running ---
    instances_per_activation: int = 5_000
    """Instances one ActivatePipeline may create at once (the backfill of a past start)."""
    instances_per_hour: int = 20_000
    """Instances created for one owner in any hour; past it, the owner's schedules wait."""
    active_pipelines: int = 100
    """Pipelines of one owner that may be SCHEDULED at a time (AWS: 100 pipelines)."""
    running_attempts: int = 8
    """Attempts of one owner's pipelines running at once (resource pools not counted)."""
    # --- definitions (AWS Data Pipeline's limits) ---
    objects_per_pipeline: int = 100
    fields_per_object: int = 50
    """Field entries of one object (each value of a multi-valued field counts)."""
    field_name_bytes: int = 256
    """UTF-8 bytes of a field name or an object id."""
    field_value_bytes: int = 10_240
    """UTF-8 bytes of one field value."""
    object_bytes: int = 15_360
    """UTF-8 bytes of one object: its id, name, field names and values."""

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


NAMES = tuple(f.name for f in dataclasses.fields(Limits))


def load_limits(section: Mapping[str, Any], env: Mapping[str, str], origin: str) -> Limits:
    """Limits from a `[limits]` table (file) and TAILRACE_LIMITS_* (environment wins).

    :raises ConfigError: for an unknown name or a value that is not a positive integer.
    """
    values: dict[str, int] = {}
    for key, raw in section.items():
        if key not in NAMES:
            raise ConfigError(f"{origin}: [limits] has no '{key}'.{did_you_mean(key, NAMES)}")
        values[key] = _positive(raw, f"{origin}: [limits] {key}")
    for key in NAMES:
        env_key = "TAILRACE_LIMITS_" + key.upper()
        if env_key in env:
            values[key] = _positive(env[env_key], f"environment {env_key}")
    return Limits(**values)


def _positive(raw: Any, where: str) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{where} is {raw!r}; expected a positive whole number")
    try:
        value = int(str(raw).replace("_", ""))
    except ValueError:
        raise ConfigError(f"{where} is {raw!r}; expected a positive whole number")
    if value < 1:
        raise ConfigError(f"{where} is {value}; expected a positive whole number")
    return value
