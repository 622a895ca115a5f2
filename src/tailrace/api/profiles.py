"""Per-user client configuration, as the AWS tools keep it: `~/.tailrace/config` (the server's
address per profile) and `~/.tailrace/credentials` (the key per profile), INI files with one
section per profile, written by `tailrace configure`. Client commands then work from any
directory. No state-store imports: client commands start fast.

    # ~/.tailrace/config                 # ~/.tailrace/credentials (mode 600)
    [default]                            [default]
    endpoint_url = http://host:8040      access_key_id = AKTR...
                                         secret_access_key = ...
    [profile staging]                    [staging]
    endpoint_url = http://staging:8040   access_key_id = ...

TAILRACE_CONFIG_FILE and TAILRACE_SHARED_CREDENTIALS_FILE move the files (as AWS_CONFIG_FILE and
AWS_SHARED_CREDENTIALS_FILE do); --profile or TAILRACE_PROFILE picks the profile.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tailrace.errors import ConfigError

DEFAULT_PROFILE = "default"


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    name: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    found: bool = False
    """Whether either file has a section for it."""


def config_paths(environ: Mapping[str, str]) -> tuple[Path, Path]:
    """(config file, credentials file) for this user."""
    base = Path(environ.get("HOME") or Path.home()) / ".tailrace"
    config = environ.get("TAILRACE_CONFIG_FILE") or str(base / "config")
    creds = environ.get("TAILRACE_SHARED_CREDENTIALS_FILE") or str(base / "credentials")
    return Path(config).expanduser(), Path(creds).expanduser()


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if not path.exists():
        return parser
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}".replace("\n", " "))
    return parser


def _config_section(name: str) -> str:
    return name if name == DEFAULT_PROFILE else f"profile {name}"


def profile_name(explicit: str | None, environ: Mapping[str, str]) -> str:
    return explicit or environ.get("TAILRACE_PROFILE") or DEFAULT_PROFILE


def read_profile(name: str, environ: Mapping[str, str]) -> Profile:
    config_path, creds_path = config_paths(environ)
    config, creds = _read(config_path), _read(creds_path)
    section = _config_section(name)
    conf = config[section] if config.has_section(section) else {}
    keys = creds[name] if creds.has_section(name) else {}
    return Profile(
        name=name,
        endpoint_url=(conf.get("endpoint_url") or "").strip() or None,
        access_key_id=(keys.get("access_key_id") or "").strip() or None,
        secret_access_key=(keys.get("secret_access_key") or "").strip() or None,
        found=config.has_section(section) or creds.has_section(name),
    )


def save_profile(
    name: str,
    environ: Mapping[str, str],
    *,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> tuple[Path, Path]:
    """Set the given values of profile `name` (others are kept); both files are private (600)."""
    config_path, creds_path = config_paths(environ)
    if endpoint_url is not None:
        config = _read(config_path)
        section = _config_section(name)
        if not config.has_section(section):
            config.add_section(section)
        config[section]["endpoint_url"] = endpoint_url
        _write_private(config_path, config)
    if access_key_id is not None or secret_access_key is not None:
        creds = _read(creds_path)
        if not creds.has_section(name):
            creds.add_section(name)
        if access_key_id is not None:
            creds[name]["access_key_id"] = access_key_id
        if secret_access_key is not None:
            creds[name]["secret_access_key"] = secret_access_key
        _write_private(creds_path, creds)
    return config_path, creds_path


def _write_private(path: Path, parser: configparser.ConfigParser) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        parser.write(f)
    os.replace(tmp, path)
