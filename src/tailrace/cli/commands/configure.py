"""`tailrace configure`: save the server's address and an access key in a per-user profile
(~/.tailrace/config and ~/.tailrace/credentials), as `aws configure` does, so that the client
commands work from any directory."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tailrace.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "configure",
        help="save the endpoint and access key the client commands use (per user, per profile)",
        description="Save the endpoint and an access key for the client commands (create-pipeline, "
        "list-runs, ...) in ~/.tailrace/config and ~/.tailrace/credentials (mode 600), under a "
        "profile. Values not given as flags are asked for on a terminal (Enter keeps the current "
        "one); with --from-local, they are taken from the credentials.json `tailrace up` wrote in "
        "--home. Flags and TAILRACE_* variables still win over the profile.",
    )
    p.add_argument(
        "--profile", metavar="NAME", help="profile to write (default: TAILRACE_PROFILE or default)"
    )
    p.add_argument("--endpoint-url", metavar="URL", help="the tailrace API, e.g. http://host:8040")
    p.add_argument("--access-key-id", metavar="ID")
    p.add_argument(
        "--secret-access-key",
        metavar="SECRET",
        help="(visible in the process list: prefer the prompt or --from-local)",
    )
    p.add_argument(
        "--from-local",
        action="store_true",
        help="copy the endpoint and key from <home>/credentials.json (written by `tailrace up`)",
    )
    p.add_argument("--list", action="store_true", help="show the profile's values (secret masked) and stop")
    p.set_defaults(func=_run)


def _mask(value: str | None) -> str:
    return "(not set)" if not value else "****" + value[-4:]


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.api.profiles import config_paths, profile_name, read_profile, save_profile

    env = os.environ
    name = profile_name(args.profile, env)
    current = read_profile(name, env)
    config_path, creds_path = config_paths(env)
    if args.list:
        print(f"profile            {name}")
        print(f"endpoint_url       {current.endpoint_url or '(not set)'}  ({config_path})")
        print(f"access_key_id      {current.access_key_id or '(not set)'}  ({creds_path})")
        print(f"secret_access_key  {_mask(current.secret_access_key)}")
        return 0
    endpoint, key_id, secret = args.endpoint_url, args.access_key_id, args.secret_access_key
    if args.from_local:
        from tailrace.api.credentials import credentials_path, read_credentials_file

        home = ctx.settings.home
        local = read_credentials_file(home)
        if local is None:
            raise UsageError(
                f"no {credentials_path(home)}: run this where `tailrace up` ran, or pass --home DIR"
            )
        endpoint = endpoint or local.get("Endpoint")
        key_id = key_id or str(local["AccessKeyId"])
        secret = secret or str(local["SecretAccessKey"])
    interactive = sys.stdin.isatty() and not args.from_local
    if interactive:
        endpoint = endpoint or _ask("Endpoint URL", current.endpoint_url)
        key_id = key_id or _ask("Access key id", current.access_key_id)
        secret = secret or _ask("Secret access key", _mask(current.secret_access_key), secret=True)
    if not (endpoint or key_id or secret):
        raise UsageError(
            "nothing to save: pass --endpoint-url, --access-key-id and --secret-access-key, "
            "or --from-local, or run it on a terminal to be asked"
        )
    if bool(key_id or current.access_key_id) != bool(secret or current.secret_access_key):
        raise UsageError("an access key needs both its id and its secret")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint-url must be an http:// or https:// URL; found {endpoint!r}")
    save_profile(
        name,
        env,
        endpoint_url=endpoint.rstrip("/") if endpoint else None,
        access_key_id=key_id or None,
        secret_access_key=secret or None,
    )
    print(f"saved profile {name!r}: endpoint in {config_path}, key in {creds_path} (mode 600)")
    return 0


def _ask(label: str, current: str | None, *, secret: bool = False) -> str | None:
    import getpass

    prompt = f"{label} [{current or 'None'}]: "
    answer = getpass.getpass(prompt) if secret else input(prompt)
    return answer.strip() or None
