"""`tailrace console`: the web console alone, without the scheduler or task runners.

Run as many as you like (on other hosts or ports) against the same metadata database, which
should then be PostgreSQL, and the same Redis when live updates must reach every one: sessions
are kept in the database, so a load balancer needs no sticky sessions.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "console",
        help="serve the web console (and the API) alone, for more console processes",
        description="Serve the web console at /console, with the API beside it, from this process. Sign in "
        "with a user (`tailrace users create NAME`) or an access key. Several of these may run behind a "
        "load balancer against one PostgreSQL database (and one Redis for live updates).",
        epilog="example: TAILRACE_DATABASE_URL=postgresql://tailrace@db/tailrace tailrace console --port 8041",
    )
    p.add_argument("--host", help="address to listen on (default: the 'host' setting)")
    p.add_argument("--port", type=int, help="port (default: the 'port' setting)")
    p.add_argument(
        "--reuse-port", action="store_true", help="share the port with other processes (SO_REUSEPORT)"
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="no sign-in: everyone who reaches the port controls every pipeline (trusted networks only)",
    )
    p.set_defaults(func=_console)


def _console(args: argparse.Namespace, ctx: Any) -> int:
    import sys

    from tailrace.api.server import bind, serve

    settings = ctx.settings
    app = ctx.services.console_app(insecure_no_auth=args.insecure_no_auth)
    host = args.host or settings.host
    sock = bind(host, args.port if args.port is not None else settings.port, reuse_port=args.reuse_port)
    shown = f"[{host}]" if ":" in host else host
    print(f"tailrace console: listening on http://{shown}:{sock.getsockname()[1]}/console", flush=True)
    if args.insecure_no_auth:
        print(
            "tailrace console: WARNING: --insecure-no-auth: no sign-in, every visitor controls every pipeline",
            file=sys.stderr,
            flush=True,
        )
    serve(app, log_level="warning", sock=sock)
    return 0
