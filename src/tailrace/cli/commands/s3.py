"""`tailrace s3` (restore) and `tailrace s3api` (bucket lifecycle configuration, shaped like
`aws s3api`). Both work on the embedded store, or on TAILRACE_S3_ENDPOINT_URL through boto3."""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tailrace.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "s3",
        help="object-store commands: restore archived objects",
        description="Commands on the object store s3:// URIs resolve to (the embedded store by default).",
    )
    ss = p.add_subparsers(dest="s3_command", metavar="ACTION", required=True)
    r = ss.add_parser(
        "restore",
        help="make a temporary readable copy of an archived (GLACIER, DEEP_ARCHIVE) object",
        description="The copy expires at the first 00:00 UTC after now + DAYS; the archived object stays.",
    )
    r.add_argument("uri", metavar="s3://BUCKET/KEY")
    r.add_argument("--days", type=int, required=True, help="how long the restored copy stays readable")
    r.set_defaults(func=_restore)

    v = ss.add_parser(
        "serve",
        help="answer the S3 REST API over the embedded store (boto3, aws s3, any S3 client)",
        description="Path-style (http://HOST:PORT/BUCKET/KEY) and virtual-host style (BUCKET.DOMAIN) "
        "addressing; requests are signed (SigV4, service s3) with keys from `tailrace keys create`.",
    )
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=int, help="port (default the setting s3_port: 8041)")
    v.add_argument("--domain", default="localhost", help="virtual-host base domain (default localhost)")
    v.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing the listening socket (one interpreter runs about one core)",
    )
    v.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a listening socket inherited from the first
    v.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # stop when this process is gone
    v.set_defaults(func=_serve)

    a = sub.add_parser(
        "s3api",
        help="bucket lifecycle configuration, with the same commands and flags as `aws s3api`",
        description="put/get/delete a bucket's lifecycle configuration on the embedded store (or on the "
        "configured S3 endpoint, which then applies it).",
    )
    aa = a.add_subparsers(dest="s3api_command", metavar="COMMAND", required=True)
    c = aa.add_parser("put-bucket-lifecycle-configuration", help="set a bucket's lifecycle rules")
    c.add_argument("--bucket", required=True)
    c.add_argument(
        "--lifecycle-configuration",
        required=True,
        metavar="JSON",
        help='the JSON {"Rules": [...]}, or file://PATH',
    )
    c.add_argument(
        "--transition-default-minimum-object-size",
        choices=["all_storage_classes_128K", "varies_by_storage_class"],
        help="objects below 128 KiB are not transitioned unless a rule filters on size "
        "(default all_storage_classes_128K, as S3)",
    )
    c.set_defaults(func=_put)
    c = aa.add_parser("get-bucket-lifecycle-configuration", help="print a bucket's lifecycle rules")
    c.add_argument("--bucket", required=True)
    c.set_defaults(func=_get)
    c = aa.add_parser("delete-bucket-lifecycle", help="remove a bucket's lifecycle rules")
    c.add_argument("--bucket", required=True)
    c.set_defaults(func=_delete)


def _load(text: str) -> Any:
    if text.startswith("file://"):
        path = Path(text.removeprefix("file://")).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"--lifecycle-configuration: cannot read {path}: {exc.strerror}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--lifecycle-configuration: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        )


def _remote_client(ctx: Any) -> Any:
    """The boto3 client when s3:// is a real endpoint; None on the embedded store."""
    return getattr(ctx.services.storage.s3, "client", None) if not ctx.services.storage.embedded_s3 else None


def _put(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.lifecycle.configs import LifecycleConfigs, put_on_s3
    from tailrace.lifecycle.rules import parse_configuration

    cfg = parse_configuration(
        _load(args.lifecycle_configuration), minimum_object_size=args.transition_default_minimum_object_size
    )
    client = _remote_client(ctx)
    if client is not None:
        put_on_s3(client, args.bucket, cfg)
    else:
        LifecycleConfigs(ctx.services.sql_engine).put(args.bucket, cfg)
    print(
        json.dumps(
            {"TransitionDefaultMinimumObjectSize": cfg.transition_default_minimum_object_size}, indent=4
        )
    )
    return 0


def _get(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.errors import NotFoundError
    from tailrace.lifecycle.configs import LifecycleConfigs, get_from_s3
    from tailrace.lifecycle.wire import to_json

    client = _remote_client(ctx)
    cfg = (
        get_from_s3(client, args.bucket)
        if client
        else LifecycleConfigs(ctx.services.sql_engine).get(args.bucket)
    )
    if cfg is None:
        raise NotFoundError(
            f"NoSuchLifecycleConfiguration: bucket {args.bucket} has no lifecycle configuration"
        )
    out = to_json(cfg)
    out["TransitionDefaultMinimumObjectSize"] = cfg.transition_default_minimum_object_size
    print(json.dumps(out, indent=4))
    return 0


def _delete(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.lifecycle.configs import LifecycleConfigs

    client = _remote_client(ctx)
    if client is not None:
        client.delete_bucket_lifecycle(Bucket=args.bucket)
    else:
        LifecycleConfigs(ctx.services.sql_engine).delete(args.bucket)
    return 0


def _serve(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.api.s3.serve import create_s3_app
    from tailrace.api.server import ApiProcesses, bind, serve
    from tailrace.clock import SystemClock

    services = ctx.services
    app = create_s3_app(
        storage=services.storage,
        sql_engine=services.sql_engine,
        state=services.state,
        clock=SystemClock(),
        domain=args.domain,
        secret_key_file=ctx.settings.secret_key_file,
    )
    if args.processes < 1:
        raise UsageError("--processes must be at least 1")
    if args.fd is not None:  # one of the extra processes of a `--processes N` server
        serve(app, sock=socket.socket(fileno=args.fd), log_level="warning", parent_pid=args.parent)
        return 0
    port = args.port if args.port is not None else (ctx.settings.s3_port or 8041)
    sock = bind(args.host, port)  # fails early and clearly when the port is taken
    extra = None
    if args.processes > 1:
        # The others accept on the same socket; they read the same store, keys and buckets.
        env = {**os.environ, "TAILRACE_HOME": str(ctx.settings.home.resolve())}
        env["TAILRACE_DATABASE_URL"] = ctx.settings.effective_database_url
        if ctx.settings.secret_key_file is not None:
            env["TAILRACE_SECRET_KEY_FILE"] = str(ctx.settings.secret_key_file.resolve())
        command = ("s3", "serve", "--domain", args.domain)
        extra = ApiProcesses(sock, args.processes - 1, env=env, command=command).start()
    print(f"tailrace s3: serving S3 on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    try:
        serve(app, sock=sock, log_level="warning")
    finally:
        if extra is not None:
            extra.stop()
    return 0


def _restore(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.storage.tiered import TieredLocalStore

    parsed = urlparse(args.uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise UsageError(f"{args.uri!r}: expected s3://BUCKET/KEY")
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    store = ctx.services.storage.s3
    if isinstance(store, TieredLocalStore):
        expiry = store.restore(bucket, key, args.days)
        print(f"restored s3://{bucket}/{key}: readable until {expiry.isoformat()}")
        return 0
    store.client.restore_object(Bucket=bucket, Key=key, RestoreRequest={"Days": args.days})
    print(f"restore of s3://{bucket}/{key} requested from S3 for {args.days} days")
    return 0
