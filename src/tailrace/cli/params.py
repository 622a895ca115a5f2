"""`--parameter-values k=v ...` and `--parameter-values-uri file://...`, as the AWS CLI takes them."""

from __future__ import annotations

import argparse
from typing import Any

from tailrace.errors import UsageError


def add_parameter_value_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--parameter-values",
        nargs="+",
        action="extend",
        default=[],
        metavar="K=V",
        help="parameter values; repeat a key for an array parameter",
    )
    p.add_argument(
        "--parameter-values-uri",
        metavar="URI",
        help='a JSON values file ({"values": {...}}), file://path or a path',
    )


def parameter_values_from_args(args: argparse.Namespace, ctx: Any) -> dict[str, Any]:
    from tailrace.definition import load_values_file, parse_parameter_values

    if args.parameter_values and args.parameter_values_uri:
        raise UsageError("use --parameter-values or --parameter-values-uri, not both")
    if args.parameter_values_uri:
        uri = args.parameter_values_uri
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        return dict(load_values_file(path))
    return dict(parse_parameter_values(args.parameter_values))
