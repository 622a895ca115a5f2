"""`tailrace keys`: issue and manage the access keys the API checks (SigV4).

These work on the metadata database directly (like `tailrace up`), so run them where the
database is reachable: on the server, or anywhere TAILRACE_DATABASE_URL points at its PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "keys",
        help="create, list, disable and enable API access keys",
        description="Manage the access keys clients sign API requests with (boto3, the AWS CLI, "
        "tailrace's own client commands). Every pipeline belongs to the owner of the key that created it.",
    )
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    c = ks.add_parser("create", help="issue a new key and print it (the secret is shown only here)")
    c.add_argument("--owner", default="default", help="who the key acts for (default: default)")
    c.add_argument("--output", choices=["text", "json"], default="text")
    c.set_defaults(func=_create)

    c = ks.add_parser("list", help="list keys (without secrets)")
    c.add_argument("--owner", help="only this owner's keys")
    c.add_argument("--output", choices=["text", "json"], default="text")
    c.set_defaults(func=_list)

    for action, active in (("disable", False), ("enable", True)):
        c = ks.add_parser(action, help=f"{action} a key (takes effect within seconds on every server)")
        c.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
        c.set_defaults(func=_set_active, active=active)


def _store(ctx: Any) -> Any:
    from tailrace.api.keys import KeyStore
    from tailrace.clock import SystemClock
    from tailrace.state.secretbox import SecretBox

    _require_database(ctx.settings)
    box = SecretBox.for_home(ctx.settings.home, ctx.settings.secret_key_file)
    keys = KeyStore(ctx.services.state, SystemClock(), box=box)
    keys.encrypt_stored()
    return keys


def _require_database(settings: Any) -> None:
    """Keys live in the server's database: never create an empty one here by accident (a key
    issued into it would be refused by the server)."""
    from tailrace.errors import ConfigError

    url = settings.effective_database_url
    if not url.startswith("sqlite:///"):
        return  # a server database (PostgreSQL): it exists or the connection says so
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    if not path.exists():
        raise ConfigError(
            f"no tailrace database at {path}: `tailrace keys` works on the server's database. "
            "Run it where `tailrace up` runs (or pass its --home DIR), or point "
            "--database-url / TAILRACE_DATABASE_URL at the server's database"
        )


def _create(args: argparse.Namespace, ctx: Any) -> int:
    key = _store(ctx).create(args.owner)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "AccessKeyId": key.access_key_id,
                    "SecretAccessKey": key.secret_access_key,
                    "Owner": key.owner,
                },
                indent=2,
            )
        )
    else:
        print(f"AccessKeyId      {key.access_key_id}")
        print(f"SecretAccessKey  {key.secret_access_key}")
        print(f"Owner            {key.owner}")
        print(
            "Keep the secret: it is not shown again. Clients use it as AWS_SECRET_ACCESS_KEY "
            "(or TAILRACE_SECRET_ACCESS_KEY)."
        )
    return 0


def _list(args: argparse.Namespace, ctx: Any) -> int:
    keys = _store(ctx).list(args.owner)
    rows = [
        {
            "AccessKeyId": k.access_key_id,
            "Owner": k.owner,
            "Status": "Active" if k.active else "Inactive",
            "CreateDate": k.created_at.isoformat(),
        }
        for k in keys
    ]
    if args.output == "json":
        print(json.dumps({"AccessKeys": rows}, indent=2))
        return 0
    for r in rows:
        print(f"{r['AccessKeyId']}  {r['Status']:<8}  {r['CreateDate'][:19]}  {r['Owner']}")
    if not rows:
        print("no keys (`tailrace up` creates one on first start; or `tailrace keys create`)")
    return 0


def _set_active(args: argparse.Namespace, ctx: Any) -> int:
    _store(ctx).set_active(args.access_key_id, args.active)
    print(f"{args.access_key_id}: {'enabled' if args.active else 'disabled'}")
    return 0
