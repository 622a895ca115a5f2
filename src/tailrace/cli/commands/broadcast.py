"""`tailrace broadcast "text"`: an operator's message to every open console page, through the API
(POST /api/v1/broadcasts) with the user's key and profile, like the other client commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tailrace.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "broadcast",
        help="send a message to every open console page",
        description="Show TEXT on every open console page of your owner (and the operators' pages), "
        "live, and keep it in the console's history. The text is shown as plain text, at most 1000 "
        "characters. Use - to read it from standard input.",
        epilog='example: tailrace broadcast "deploy at 10:00 UTC: runs pause for five minutes"',
    )
    p.add_argument("text", metavar="TEXT", help="the message (or - for standard input)")
    g = p.add_argument_group("connection")
    g.add_argument(
        "--endpoint-url", metavar="URL", help="the tailrace API (default: TAILRACE_ENDPOINT or config)"
    )
    g.add_argument(
        "--profile",
        metavar="NAME",
        help="profile in ~/.tailrace/config and credentials (env TAILRACE_PROFILE)",
    )
    p.set_defaults(func=_broadcast)


def _broadcast(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.api.client import ApiCallError
    from tailrace.cli.awscli import make_client
    from tailrace.console.live.broadcasts import broadcast_text

    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        text = broadcast_text(text)  # the server checks again; this fails before any network
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        answer = make_client(args, ctx).rest("POST", "/api/v1/broadcasts", {"text": text})
    except ApiCallError as exc:
        raise UsageError(f"broadcast refused: {exc}") from None
    print(f"broadcast sent to the console pages of {answer.get('owner') or 'every owner'}", file=sys.stderr)
    return 0
