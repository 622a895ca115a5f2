"""Configuration: `tailrace.toml` < `TAILRACE_*` environment < command-line flags.

Validated once at start into a frozen Settings; `tailrace config` prints the effective values.
Every key below can be set in the file (top-level `key = value`), as `TAILRACE_<KEY>` in the
environment, or by a flag of the command that uses it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailrace.errors import ConfigError, did_you_mean


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path = Path(".tailrace")
    """Data directory: metadata database, embedded object store (`s3/`), logs, buffers."""
    database_url: str | None = None
    """SQLAlchemy URL of the metadata store; default sqlite:///<home>/tailrace.db."""
    s3_endpoint_url: str | None = None
    """When set, s3:// URIs go to this S3 endpoint through boto3 instead of <home>/s3/."""
    s3_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8040
    workers: int = 4
    """Embedded worker threads started by `tailrace up`."""
    endpoint: str | None = None
    """Address of a running `tailrace up`, for the client commands (default http://host:port)."""
    access_key_id: str | None = None
    secret_access_key: str | None = None
    notify_private_destinations: str = "single-owner"
    """HTTP/S subscribers on loopback, private or reserved addresses: allow, deny, or single-owner
    (allowed while the access keys belong to one owner only)."""
    notify_allowed_networks: str | None = None
    """Comma-separated networks (CIDR) subscribers may always be in, e.g. 10.1.0.0/16."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'tailrace.db').resolve()}"

    @property
    def effective_endpoint(self) -> str:
        return self.endpoint or f"http://{self.host}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("aws_secret_access_key", "secret_access_key") and value:
                value = "****"
            out[f.name] = str(value) if isinstance(value, Path) else value
        out["database_url"] = self.database_url or self.effective_database_url
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _coerce(name: str, raw: Any, origin: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "Path":
            return Path(str(raw)).expanduser()
        if kind == "int":
            return int(raw)
        if kind in ("str | None", "str"):
            return None if raw in (None, "") and kind != "str" else str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: '{name}' has value {raw!r}; expected {kind.replace(' | None', '')}")
    return raw


def load_settings(
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from file < environment < overrides (None values in overrides are ignored)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or (
        Path(env["TAILRACE_CONFIG"]) if env.get("TAILRACE_CONFIG") else Path("tailrace.toml")
    )
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}")
        for key, raw in data.items():
            if key not in _FIELDS:
                if isinstance(raw, dict):
                    continue  # sections belong to other components (agent, lifecycle...)
                raise ConfigError(f"{path}: unknown key '{key}'.{did_you_mean(key, _FIELDS)}")
            values[key] = _coerce(key, raw, str(path))
    elif config_file is not None:
        raise ConfigError(f"config file {config_file} does not exist")
    for key in _FIELDS:
        env_key = "TAILRACE_" + key.upper()
        if env_key in env:
            values[key] = _coerce(key, env[env_key], f"environment {env_key}")
    # The standard AWS variables are honoured for the S3 backend, as boto3 would.
    for key, env_key in (
        ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ):
        if key not in values and env.get(env_key):
            values[key] = env[env_key]
    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting '{key}'.{did_you_mean(key, _FIELDS)}")
        values[key] = _coerce(key, raw, "command line")
    return Settings(**values)
