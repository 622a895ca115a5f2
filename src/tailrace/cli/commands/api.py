"""`tailrace serve-api`: the API alone in this process, no scheduler or task runners.

`tailrace up` starts `api_processes - 1` of these on its own listening socket (`--fd`), so
the API is served by several interpreters at once. Started by hand with `--reuse-port`, more
of them can join a `tailrace up` (or each other) on the same host and port; they share the
metadata database, which should then be PostgreSQL.
"""

from __future__ import annotations

import argparse
import socket
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve-api",
        help="serve only the API (more API processes next to `tailrace up`)",
        description="Serve the AWS Data Pipeline API and the REST API from this process, with no scheduler or "
        "task runners. Use --reuse-port to run several on one port (SO_REUSEPORT) against PostgreSQL.",
        epilog="example: TAILRACE_DATABASE_URL=postgresql://tailrace@db/tailrace tailrace serve-api --port 8040 "
        "--reuse-port",
    )
    p.add_argument("--host", help="address to listen on (default: the 'host' setting)")
    p.add_argument("--port", type=int, help="port (default: the 'port' setting)")
    p.add_argument(
        "--reuse-port", action="store_true", help="share the port with other API processes (SO_REUSEPORT)"
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="accept unsigned requests; every caller controls every pipeline (trusted networks only)",
    )
    p.add_argument(
        "--fd", type=int, help=argparse.SUPPRESS
    )  # a listening socket inherited from `tailrace up`
    p.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # stop when this process is gone
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # a byte here once accepting
    p.set_defaults(func=_serve_api)


def _serve_api(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.api.server import serve

    settings = ctx.settings
    # The console too: `tailrace up` hands connections to these processes as well.
    app = ctx.services.console_app(insecure_no_auth=args.insecure_no_auth)
    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    serve(
        app,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level="warning",
        sock=sock,
        reuse_port=args.reuse_port,
        parent_pid=args.parent,
        ready_fd=args.ready_fd,
    )
    return 0
