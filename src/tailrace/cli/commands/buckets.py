"""`tailrace buckets`: who owns which bucket of the object store, and explicit shares.

A bucket belongs to the owner whose pipeline first wrote to it (or who created it here); other
owners' attempts are refused on it until its owner grants it. Works on the metadata database
directly, like `tailrace keys`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tailrace.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "buckets",
        help="create, share and list object-store buckets of owners",
        description="Buckets belong to owners (the owners of API keys). An owner's pipelines reach "
        "only its buckets and those granted to it. See docs/security.md.",
    )
    bs = p.add_subparsers(dest="buckets_command", metavar="ACTION", required=True)
    c = bs.add_parser("create", help="make OWNER the owner of BUCKET (refused when someone owns it)")
    c.add_argument("bucket", metavar="BUCKET")
    c.add_argument("--owner", default="default", help="who owns it (default: default)")
    c.set_defaults(func=_create)
    for action in ("grant", "revoke"):
        c = bs.add_parser(action, help=f"{action} OWNER read and write access to BUCKET")
        c.add_argument("bucket", metavar="BUCKET")
        c.add_argument("owner", metavar="OWNER")
        c.set_defaults(func=_grant if action == "grant" else _revoke)
    c = bs.add_parser("list", help="list buckets, their owners and grants")
    c.add_argument("--owner", help="only buckets this owner owns or was granted")
    c.add_argument("--output", choices=["text", "json"], default="text")
    c.set_defaults(func=_list)


def _registry(ctx: Any) -> Any:
    from tailrace.storage.buckets import SqlBucketRegistry

    return SqlBucketRegistry(ctx.services.sql_engine)


def _check(bucket: str, owner: str) -> None:
    from tailrace.api.keys import check_owner
    from tailrace.storage import check_bucket

    check_bucket(bucket)
    check_owner(owner)


def _create(args: argparse.Namespace, ctx: Any) -> int:
    _check(args.bucket, args.owner)
    found = _registry(ctx).claim(args.bucket, args.owner)
    if found != args.owner:
        raise UsageError(f"bucket '{args.bucket}' already belongs to owner '{found}'")
    print(f"{args.bucket}: owned by {found}")
    return 0


def _grant(args: argparse.Namespace, ctx: Any) -> int:
    _check(args.bucket, args.owner)
    reg = _registry(ctx)
    if reg.owner_of(args.bucket) is None:
        raise UsageError(f"bucket '{args.bucket}' has no owner yet; `tailrace buckets create` it first")
    reg.grant(args.bucket, args.owner)
    print(f"{args.bucket}: granted to {args.owner}")
    return 0


def _revoke(args: argparse.Namespace, ctx: Any) -> int:
    _check(args.bucket, args.owner)
    if not _registry(ctx).revoke(args.bucket, args.owner):
        raise UsageError(f"owner '{args.owner}' had no grant on bucket '{args.bucket}'")
    print(f"{args.bucket}: revoked from {args.owner}")
    return 0


def _list(args: argparse.Namespace, ctx: Any) -> int:
    rows = _registry(ctx).list(args.owner)
    if args.output == "json":
        print(
            json.dumps({"Buckets": [{"Name": b, "Owner": o, "GrantedTo": g} for b, o, g in rows]}, indent=2)
        )
        return 0
    for b, o, g in rows:
        print(f"{b}  owner={o}" + (f"  granted={','.join(g)}" if g else ""))
    if not rows:
        print("no buckets yet (an owner's first write creates its bucket)")
    return 0
