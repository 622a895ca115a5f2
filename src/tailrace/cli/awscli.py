"""The plumbing of the AWS-style client commands (tailrace.cli.commands.aws): which endpoint and
key they use, how they print answers (--query, --output), and the arguments they share."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tailrace.cli.params import parameter_values_from_args
from tailrace.errors import ConfigError, UsageError

# --- connection ---------------------------------------------------------------------------------


def profile_of(args: argparse.Namespace) -> Any:
    from tailrace.api.profiles import profile_name, read_profile

    explicit = getattr(args, "profile", None)
    profile = read_profile(profile_name(explicit, os.environ), os.environ)
    if not profile.found and (explicit or os.environ.get("TAILRACE_PROFILE")):
        from tailrace.api.profiles import config_paths

        config, creds = config_paths(os.environ)
        raise ConfigError(
            f"profile {profile.name!r} is not in {config} or {creds}; "
            f"create it with `tailrace configure --profile {profile.name}`"
        )
    return profile


def endpoint_of(args: argparse.Namespace, ctx: Any, profile: Any = None) -> str:
    """--endpoint-url > TAILRACE_ENDPOINT (or tailrace.toml) > the profile's endpoint_url >
    the Endpoint `tailrace up` wrote to <home>/credentials.json > http://host:port."""
    from tailrace.api.credentials import read_credentials_file

    if args.endpoint_url:
        return str(args.endpoint_url).rstrip("/")
    settings = ctx.settings
    if settings.endpoint:
        return str(settings.endpoint).rstrip("/")
    profile = profile or profile_of(args)
    if profile.endpoint_url:
        return str(profile.endpoint_url).rstrip("/")
    written = read_credentials_file(settings.home)
    if written and written.get("Endpoint"):
        return str(written["Endpoint"]).rstrip("/")
    return str(settings.effective_endpoint)


def make_client(args: argparse.Namespace, ctx: Any) -> Any:
    """A client for the configured tailrace endpoint, signing with the configured key.

    The key: an explicit --profile > TAILRACE_ACCESS_KEY_ID/TAILRACE_SECRET_ACCESS_KEY (or
    tailrace.toml) > the profile (TAILRACE_PROFILE or default) in ~/.tailrace/credentials >
    <home>/credentials.json (written by `tailrace up`) > AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
    """
    from tailrace.api.client import DataPipelineClient
    from tailrace.api.credentials import ClientCredentials, client_credentials

    settings = ctx.settings
    profile = profile_of(args)
    from_profile = (
        ClientCredentials(
            access_key_id=profile.access_key_id,
            secret_access_key=profile.secret_access_key,
            source=f"profile {profile.name}",
        )
        if profile.access_key_id and profile.secret_access_key
        else None
    )
    if from_profile is not None and getattr(args, "profile", None):
        creds: ClientCredentials | None = from_profile
    else:
        creds = client_credentials(
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            home=settings.home,
            environ=os.environ,
            profile=from_profile,
        )
    if creds is None:
        raise ConfigError(
            "no access key: run `tailrace configure` (it saves the endpoint and a key from "
            "`tailrace keys create` in ~/.tailrace), or set TAILRACE_ACCESS_KEY_ID and "
            "TAILRACE_SECRET_ACCESS_KEY, or run where `tailrace up` wrote "
            f"{settings.home}/credentials.json"
        )
    return DataPipelineClient(endpoint_of(args, ctx, profile), creds.access_key_id, creds.secret_access_key)


# --- output ---------------------------------------------------------------------------------------


def output_format(args: argparse.Namespace) -> str:
    return args.output or ("table" if sys.stdout.isatty() else "json")


def print_json(value: Any) -> None:
    text = json_text(value) + b"\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (tests)
        sys.stdout.write(text.decode())
        return
    sys.stdout.flush()
    buffer.write(text)
    buffer.flush()


def json_text(value: Any) -> bytes:
    """`value` as the AWS CLI prints JSON (json.dumps(indent=4, ensure_ascii=False)), written by
    orjson: list-runs prints megabytes, which the json module's indenting encoder (pure Python)
    takes a tenth of a second for."""
    import orjson

    data = orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2)
    # orjson indents by 2: double every line's indent, deepest first. A NUL never occurs in JSON
    # text, so it marks lines already done until the end.
    depth = 0
    while b"\n" + b"  " * (depth + 1) in data:
        depth += 1
    for d in range(depth, 0, -1):
        data = data.replace(b"\n" + b"  " * d, b"\0" + b"    " * d)
    return data.replace(b"\0", b"\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    print(columns_text(rows, header))


def columns_text(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    table = [list(header), *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(table[0], widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table[1:]]
    return "\n".join(lines)


def emit(args: argparse.Namespace, value: Any, table: Callable[[], None] | None = None) -> int:
    """Print a command's answer: --query (JMESPath) first, then --output json, text or table
    (the command's own table for a whole answer, a generic one for a query's result)."""
    from tailrace.cli.output import apply_query, table_text, text_lines

    fmt = output_format(args)
    query = getattr(args, "query", None)
    if query:
        value = apply_query(query, value)
        table = None
    elif value in ({}, None):
        return 0  # nothing to show, as the AWS CLI
    if fmt == "text":
        for line in text_lines(value):
            print(line)
    elif fmt == "table" and table is not None:
        table()
    elif fmt == "table":
        print(table_text(value))
    else:
        print_json(value)
    return 0


def fields_dict(fields: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in fields:
        out.setdefault(f["key"], []).append(f.get("stringValue", f.get("refValue", "")))
    return out


# --- argument helpers -----------------------------------------------------------------------------


def read_uri(value: str, what: str) -> str:
    """A `file://path` (or bare path) file's text, or the value itself when it is inline JSON."""
    text = value.strip()
    if text.startswith(("{", "[")):
        return text
    path = Path(value[len("file://") :] if value.startswith("file://") else value).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc.strerror or exc}")


def path_of(value: str) -> str:
    return value[len("file://") :] if value.startswith("file://") else value


def wire_values(values: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"id": key, "stringValue": item}
        for key, value in values.items()
        for item in (value if isinstance(value, list | tuple) else [value])
    ]


def definition_params(args: argparse.Namespace, ctx: Any) -> dict[str, Any]:
    """pipelineObjects (+ parameterObjects, parameterValues) from --pipeline-definition and
    friends, with the AWS CLI's precedence: explicit parameter objects and values replace the
    definition's own."""
    from tailrace.definition import load_file, loads, to_wire

    source = args.pipeline_definition
    if source.strip().startswith("{"):
        defn = loads(source, source="--pipeline-definition")
    else:
        defn = load_file(path_of(source))
    wire = to_wire(defn)
    if args.parameter_objects:
        params = to_wire(loads(read_uri(args.parameter_objects, "--parameter-objects"), source="parameters"))
        wire["parameterObjects"] = params.get("parameterObjects", [])
    values = parameter_values_from_args(args, ctx)
    if values:
        wire["parameterValues"] = wire_values(values)
    return wire


def parse_timestamp(text: str, flag: str) -> datetime:
    from tailrace.clock import parse_dp

    try:
        return parse_dp(text)
    except ValueError:
        raise UsageError(f"{flag} must look like 2015-04-07T00:00:00 (UTC), got {text!r}")


def tags_arg(items: Sequence[str]) -> list[dict[str, str]]:
    """`key=K,value=V` (the AWS CLI's shorthand) or `K=V`."""
    out = []
    for item in items:
        parts = dict(p.partition("=")[::2] for p in item.split(",")) if item.startswith("key=") else None
        if parts is not None and "key" in parts:
            out.append({"key": parts["key"], "value": parts.get("value", "")})
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--tags takes key=K,value=V or K=V, got {item!r}")
        out.append({"key": key, "value": value})
    return out
