"""Client side of access keys: where the client commands find their key, and the credentials
file `tailrace up` writes on first start (no state-store imports, so client commands start fast).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailrace.errors import ConfigError

if TYPE_CHECKING:
    from tailrace.state import AccessKey

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientCredentials:
    access_key_id: str
    secret_access_key: str
    source: str
    """Where they came from (for error messages and `--debug`)."""


def credentials_path(home: Path) -> Path:
    return home / CREDENTIALS_FILE


def write_credentials_file(home: Path, key: AccessKey, endpoint: str) -> Path:
    """Write the key and endpoint to <home>/credentials.json, readable by the owner only."""
    home.mkdir(parents=True, exist_ok=True)
    path = credentials_path(home)
    data = {
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
        "Owner": key.owner,
        "Endpoint": endpoint,
    }
    _write_private(path, data)
    return path


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(data), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def update_credentials_endpoint(home: Path, endpoint: str) -> None:
    """Point the credentials file at the address the server listens on now."""
    data = read_credentials_file(home)
    if data is None or data.get("Endpoint") == endpoint:
        return
    _write_private(credentials_path(home), {**data, "Endpoint": endpoint})


def read_credentials_file(home: Path) -> dict[str, Any] | None:
    path = credentials_path(home)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read credentials: {exc}")
    if not isinstance(data, dict) or not data.get("AccessKeyId") or not data.get("SecretAccessKey"):
        raise ConfigError(f"{path}: expected an object with AccessKeyId and SecretAccessKey")
    return data


def client_credentials(
    *,
    access_key_id: str | None,
    secret_access_key: str | None,
    home: Path,
    environ: Mapping[str, str],
    profile: ClientCredentials | None = None,
) -> ClientCredentials | None:
    """The key a client command signs with. Precedence (first complete pair wins):

    1. TAILRACE_ACCESS_KEY_ID / TAILRACE_SECRET_ACCESS_KEY (or access_key_id / secret_access_key
       in tailrace.toml), passed in as the first two arguments;
    2. `profile`: the key of the selected profile in ~/.tailrace/credentials (api/profiles.py);
    3. <home>/credentials.json, written by `tailrace up` on first start;
    4. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    """
    if access_key_id and secret_access_key:
        return ClientCredentials(
            access_key_id=access_key_id, secret_access_key=secret_access_key, source="TAILRACE_ACCESS_KEY_ID"
        )
    if bool(access_key_id) != bool(secret_access_key):
        raise ConfigError("set both TAILRACE_ACCESS_KEY_ID and TAILRACE_SECRET_ACCESS_KEY, or neither")
    if profile is not None:
        return profile
    data = read_credentials_file(home)
    if data is not None:
        return ClientCredentials(
            access_key_id=str(data["AccessKeyId"]),
            secret_access_key=str(data["SecretAccessKey"]),
            source=str(credentials_path(home)),
        )
    aws_id, aws_secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if aws_id and aws_secret:
        return ClientCredentials(
            access_key_id=aws_id, secret_access_key=aws_secret, source="AWS_ACCESS_KEY_ID"
        )
    return None
