"""`tailrace users`: the web console's local users (create, list, delete).

Like `tailrace keys`, these work on the metadata database directly: run them where
`tailrace up` runs, or with TAILRACE_DATABASE_URL pointing at its PostgreSQL.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "users",
        help="create, list and delete the web console's users",
        description="Manage the local users who sign in to the web console (/console). Passwords are stored "
        "as scrypt hashes. Roles: admin (every owner's pipelines, unless --owner is given), operator (one "
        "owner's pipelines), readonly (one owner's pipelines, no actions).",
    )
    us = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    c = us.add_parser("create", help="add a user (asks for the password)")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--role", choices=["admin", "operator", "readonly"], default="operator")
    c.add_argument(
        "--owner", help="the owner whose pipelines the user sees (default: default; an admin: all)"
    )
    c.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    c.set_defaults(func=_create)

    c = us.add_parser("list", help="list users (never their passwords)")
    c.add_argument("--output", choices=["text", "json"], default="text")
    c.set_defaults(func=_list)

    c = us.add_parser("delete", help="delete a user and end their sessions")
    c.add_argument("name", metavar="NAME")
    c.set_defaults(func=_delete)


def _store(ctx: Any) -> Any:
    from tailrace.cli.commands.keys import _require_database
    from tailrace.clock import SystemClock
    from tailrace.console.users import UserStore

    _require_database(ctx.settings)
    ctx.services.state  # noqa: B018  (the store migrates the database: the users table exists)
    return UserStore(ctx.services.sql_engine, SystemClock())


def _password(args: argparse.Namespace) -> str:
    from tailrace.errors import UsageError

    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask the password on: pass --password-stdin and pipe it in")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ; nothing was created")
    return first


def _create(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.console.users import check_name

    check_name(args.name)
    store = _store(ctx)
    user = store.create(args.name, _password(args), role=args.role, owner=args.owner)
    sees = f"owner {user.owner}'s pipelines" if user.owner else "every owner's pipelines"
    print(f"created {user.role} {user.name!r}: sees {sees}")
    return 0


def _list(args: argparse.Namespace, ctx: Any) -> int:
    users = _store(ctx).list()
    rows = [
        {"Name": u.name, "Role": u.role, "Owner": u.owner, "CreateDate": u.created_at.isoformat()}
        for u in users
    ]
    if args.output == "json":
        print(json.dumps({"Users": rows}, indent=2))
        return 0
    for r in rows:
        print(f"{r['Name']:<24}  {r['Role']:<8}  {r['Owner'] or '(all owners)':<16}  {r['CreateDate'][:19]}")
    if not rows:
        print("no users (`tailrace users create NAME`)")
    return 0


def _delete(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.errors import NotFoundError

    if not _store(ctx).delete(args.name):
        raise NotFoundError(f"no user {args.name!r}")
    print(f"deleted {args.name!r} (and ended their sessions)")
    return 0
