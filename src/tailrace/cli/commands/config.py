"""`tailrace config`: print the effective configuration."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "config",
        help="print the effective configuration",
        description="Print the configuration after tailrace.toml, TAILRACE_* variables and flags are applied: "
        "every top-level setting, then every [section] as section.key (secrets masked).",
    )
    p.add_argument("--output", choices=["text", "json"], default="text")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.config import flatten

    nested = ctx.settings.as_dict()
    if args.output == "json":
        print(json.dumps(nested, indent=2, default=str))
    else:
        values = flatten(nested)
        width = max(len(k) for k in values)
        for key, value in values.items():
            print(f"{key:<{width}}  {value}")
    return 0
