"""AWS-style client commands: `tailrace create-pipeline`, `put-pipeline-definition`, ...,
`list-runs`, named and shaped like `aws datapipeline`'s. They call a running `tailrace up` over
its AWS API (boto3, SigV4), so they work from any host that can reach it.

Where they go: --endpoint-url > TAILRACE_ENDPOINT (or `endpoint` in tailrace.toml) > the
profile's endpoint_url in ~/.tailrace/config (tailrace.api.profiles) > the Endpoint in
<home>/credentials.json > http://<host>:<port>. Which key signs: see make_client. Output: a
table on a terminal, JSON otherwise, or --output json|text|table, after --query (JMESPath) as
the AWS CLI applies it (cli/output.py). The plumbing they share is in cli/awscli.py, list-runs
in cli/runs.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from tailrace.cli.awscli import (
    columns_text,
    definition_params,
    emit,
    fields_dict,
    make_client,
    parse_timestamp,
    print_json,
    print_table,
    read_uri,
    tags_arg,
    wire_values,
)
from tailrace.cli.params import add_parameter_value_args, parameter_values_from_args
from tailrace.cli.runs import LIST_RUNS_STATUSES, list_runs
from tailrace.errors import TailraceError, UsageError

REGION = "us-east-1"
"""tailrace ignores the region; botocore needs one to sign."""
BACKFILL_THRESHOLD = 50
"""activate-pipeline asks before backfilling more periods than this at once."""
DESCRIBE_CHUNK = 100
DESCRIBE_CALLS = 2
"""DescribeObjects calls in flight: the server works while the client reads the last answer. More
only make the server's threads contend for its one interpreter lock."""
QUERY_PAGE = 500


# --- commands -------------------------------------------------------------------------------------


def _create(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    params: dict[str, Any] = {"name": args.name, "uniqueId": args.unique_id}
    if args.description is not None:
        params["description"] = args.description
    if args.tags:
        params["tags"] = tags_arg(args.tags)
    out = dp.call("CreatePipeline", **params)
    return emit(args, out, lambda: print(out["pipelineId"]))


def _put_or_validate(op: str) -> Callable[[argparse.Namespace, Any], int]:
    def run(args: argparse.Namespace, ctx: Any) -> int:
        wire = definition_params(args, ctx)
        dp = make_client(args, ctx)
        out = dp.call(op, pipelineId=args.pipeline_id, **wire)
        out.setdefault("validationErrors", [])
        out.setdefault("validationWarnings", [])

        def table() -> None:
            for kind, items in (("error", out["validationErrors"]), ("warning", out["validationWarnings"])):
                for item in items:
                    for message in item.get("errors") or item.get("warnings") or []:
                        print(f"{kind}  {item.get('id', '')}: {message}")
            print("errored: " + ("true" if out["errored"] else "false"))

        emit(args, {k: out[k] for k in ("validationErrors", "errored", "validationWarnings")}, table)
        if out["errored"]:
            n = sum(len(e.get("errors", [])) for e in out["validationErrors"])
            saved = "not saved" if op == "PutPipelineDefinition" else "invalid"
            print(f"tailrace: the definition is {saved}: {n} error(s)", file=sys.stderr)
            return 1
        return 0

    return run


def _get_definition(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.definition import from_wire, to_file

    dp = make_client(args, ctx)
    out = dp.call("GetPipelineDefinition", pipelineId=args.pipeline_id, version=args.version)
    file_form = to_file(from_wire(out, source=args.pipeline_id))  # the file form, as the AWS CLI prints it
    return emit(args, file_form, lambda: print_json(file_form))


class BackfillNotConfirmed(TailraceError):
    """An activation would backfill more periods than the threshold and nobody confirmed it."""

    exit_code = 3


def _activate(args: argparse.Namespace, ctx: Any) -> int:
    params: dict[str, Any] = {"pipelineId": args.pipeline_id}
    if args.start_timestamp:
        params["startTimestamp"] = parse_timestamp(args.start_timestamp, "--start-timestamp")
    values = parameter_values_from_args(args, ctx)
    if values:
        params["parameterValues"] = wire_values(values)
    if args.show_periods < 0 or args.backfill_threshold < 0:
        raise UsageError("--show-periods and --backfill-threshold take a number of periods, 0 or more")
    dp = make_client(args, ctx)
    if args.dry_run:
        preview = activation_preview(dp, params, limit=args.show_periods)
        emit(args, preview, lambda: print(preview_text(preview)))
        print("tailrace: nothing was activated (--dry-run)", file=sys.stderr)
        return 0
    if not args.yes:
        preview = activation_preview(dp, params, limit=args.show_periods)
        if preview["periods"] > args.backfill_threshold and not _confirmed(preview, args):
            print("tailrace: not activated", file=sys.stderr)
            return 1
    dp.call("ActivatePipeline", **params)
    return 0


def activation_preview(dp: Any, params: Mapping[str, Any], *, limit: int) -> dict[str, Any]:
    """The server's preview of ActivatePipeline(params): see GET /openapi.json, previewActivation."""
    body = {k: v for k, v in params.items() if k != "pipelineId"}
    path = f"/api/v1/pipelines/{quote(params['pipelineId'], safe='')}/activation-preview"
    return dp.rest("POST", path, body, query=f"limit={limit}")


def preview_text(preview: Mapping[str, Any]) -> str:
    """The preview for people: totals, then one line per instance of the periods listed."""
    pid, periods, count = preview["pipelineId"], preview["periods"], preview["instances"]
    more = "" if preview.get("complete", True) else "at least "
    if not periods:
        return f"{pid}: activating now creates no instances at once (no period is due yet)"
    lines = [
        f"{pid}: activating now would create {more}{periods} period(s), {count} instance(s), at once",
        f"scheduled starts {preview['firstScheduledStart']} to {preview['lastScheduledStart']}, oldest first",
        "",
    ]
    rows = []
    for n, w in enumerate(preview["windows"], 1):
        for i, iid in enumerate(w["instances"] or ["(none)"]):
            first = i == 0
            rows.append(
                (
                    str(n) if first else "",
                    w["scheduledStartTime"] if first else "",
                    w["runAt"] if first else "",
                    iid,
                )
            )
    lines.append(columns_text(rows, ("Period", "Scheduled start", "Runs at", "Instance")))
    rest = periods - len(preview["windows"])
    if rest > 0:
        lines.append(f"... and {more}{rest} more period(s) (--show-periods N lists more)")
    return "\n".join(lines)


def _confirmed(preview: Mapping[str, Any], args: argparse.Namespace) -> bool:
    """Ask on a terminal; refuse (BackfillNotConfirmed) anywhere else."""
    periods = preview["periods"]
    if not sys.stdin.isatty():
        raise BackfillNotConfirmed(
            f"activating {args.pipeline_id} now would backfill {periods} periods "
            f"({preview['instances']} instances, scheduled from {preview['firstScheduledStart']} to "
            f"{preview['lastScheduledStart']}), more than --backfill-threshold {args.backfill_threshold}; "
            "list them with --dry-run, then add --yes to go ahead (or give a later --start-timestamp)"
        )
    print(preview_text(preview), file=sys.stderr)
    print(
        f"More than {args.backfill_threshold} periods. Activate and create them? [y/N] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _deactivate(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    dp.call("DeactivatePipeline", pipelineId=args.pipeline_id, cancelActive=args.cancel_active)
    return 0


def _delete(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    dp.call("DeletePipeline", pipelineId=args.pipeline_id)
    return 0


def _list_pipelines(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    items: list[dict[str, str]] = []
    marker: str | None = None
    while True:
        page = dp.call("ListPipelines", **({"marker": marker} if marker else {}))
        items += page["pipelineIdList"]
        marker = page.get("marker")
        if not page.get("hasMoreResults") or not marker:
            break
    return emit(
        args,
        {"pipelineIdList": items},
        lambda: print_table([(p["name"], p["id"]) for p in items], ("Name", "Id")),
    )


def _describe_pipelines(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    out = dp.call("DescribePipelines", pipelineIds=args.pipeline_ids)

    def table() -> None:
        for desc in out["pipelineDescriptionList"]:
            print(f"{desc['pipelineId']}  {desc['name']}")
            rows = [(k, ", ".join(v)) for k, v in sorted(fields_dict(desc["fields"]).items())]
            rows += [(f"tag:{t['key']}", t["value"]) for t in desc.get("tags", [])]
            print_table(rows, ("Field", "Value"))
            print()

    return emit(args, out, table)


def _describe_objects(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    objects = _describe_all(dp, args.pipeline_id, args.object_ids, evaluate=args.evaluate_expressions)

    def table() -> None:
        for obj in objects:
            print(obj["id"])
            rows = [(f["key"], f.get("stringValue", f.get("refValue", ""))) for f in obj["fields"]]
            print_table(rows, ("Field", "Value"))
            print()

    return emit(args, {"pipelineObjects": objects}, table)


def _describe_all(
    dp: Any,
    pipeline_id: str,
    ids: Iterable[str],
    *,
    evaluate: bool = False,
) -> list[dict[str, Any]]:
    """DescribeObjects in chunks of 100 ids (the most the service takes), in order, two calls in
    flight."""

    def one(chunk: list[str]) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            extra = {"marker": marker} if marker else {}
            page = dp.call(
                "DescribeObjects",
                pipelineId=pipeline_id,
                objectIds=chunk,
                evaluateExpressions=evaluate,
                **extra,
            )
            objects += page["pipelineObjects"]
            marker = page.get("marker")
            if not page.get("hasMoreResults") or not marker:
                return objects

    from concurrent.futures import ThreadPoolExecutor  # not on the start-up path of every command

    with ThreadPoolExecutor(max_workers=DESCRIBE_CALLS) as pool:
        futures = []
        chunk: list[str] = []
        for oid in ids:
            chunk.append(oid)
            if len(chunk) == DESCRIBE_CHUNK:
                futures.append(pool.submit(one, chunk))
                chunk = []
        if chunk:
            futures.append(pool.submit(one, chunk))
        return [item for f in futures for item in f.result()]


def _query_all(
    dp: Any,
    pipeline_id: str,
    sphere: str,
    query: Mapping[str, Any] | None,
    limit: int,
) -> list[str]:
    """The ids of every QueryObjects page, page after page (pages may be empty)."""
    ids: list[str] = []
    marker: str | None = None
    while True:
        params: dict[str, Any] = {"pipelineId": pipeline_id, "sphere": sphere, "limit": limit}
        if query:
            params["query"] = query
        if marker:
            params["marker"] = marker
        page = dp.call("QueryObjects", **params)
        ids += page.get("ids", [])
        marker = page.get("marker")
        if not page.get("hasMoreResults") or not marker:
            return ids


def _query_objects(args: argparse.Namespace, ctx: Any) -> int:
    query = None
    if args.objects_query:
        try:
            query = json.loads(read_uri(args.objects_query, "--objects-query"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"--objects-query is not JSON: {exc}")
    dp = make_client(args, ctx)
    ids = _query_all(dp, args.pipeline_id, args.sphere, query, args.limit or QUERY_PAGE)
    return emit(args, {"ids": ids}, lambda: print("\n".join(ids)) if ids else None)


def _set_status(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    dp.call("SetStatus", pipelineId=args.pipeline_id, objectIds=args.object_ids, status=args.status)
    return 0


def _evaluate(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    out = dp.call(
        "EvaluateExpression",
        pipelineId=args.pipeline_id,
        objectId=args.object_id,
        expression=args.expression,
    )
    return emit(args, out, lambda: print(out["evaluatedExpression"]))


def _add_tags(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    dp.call("AddTags", pipelineId=args.pipeline_id, tags=tags_arg(args.tags))
    return 0


def _remove_tags(args: argparse.Namespace, ctx: Any) -> int:
    dp = make_client(args, ctx)
    dp.call("RemoveTags", pipelineId=args.pipeline_id, tagKeys=args.tag_keys)
    return 0


# --- registration ---------------------------------------------------------------------------------


def _client_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--endpoint-url", metavar="URL", help="the tailrace API (default: TAILRACE_ENDPOINT or config)"
    )
    g.add_argument(
        "--profile",
        metavar="NAME",
        help="profile in ~/.tailrace/config and credentials (env TAILRACE_PROFILE)",
    )
    g.add_argument(
        "--output",
        choices=["json", "text", "table"],
        help="json (the AWS shapes; default when not on a terminal), text (tab-separated, for "
        "scripts) or table (default on a terminal)",
    )
    g.add_argument(
        "--query",
        metavar="JMESPATH",
        help="print only this part of the answer, e.g. --query pipelineId --output text",
    )


COMMANDS: list[tuple[str, str, Callable[[argparse.Namespace, Any], int]]] = [
    ("create-pipeline", "create an empty pipeline (idempotent on --unique-id)", _create),
    (
        "put-pipeline-definition",
        "store a definition as the pipeline's latest version",
        _put_or_validate("PutPipelineDefinition"),
    ),
    (
        "validate-pipeline-definition",
        "check a definition without saving it",
        _put_or_validate("ValidatePipelineDefinition"),
    ),
    ("get-pipeline-definition", "print a pipeline's definition in file form", _get_definition),
    ("activate-pipeline", "start running a pipeline", _activate),
    ("deactivate-pipeline", "stop scheduling a pipeline", _deactivate),
    ("delete-pipeline", "delete a pipeline and its history", _delete),
    ("list-pipelines", "list your pipelines", _list_pipelines),
    ("describe-pipelines", "print pipelines' fields and tags", _describe_pipelines),
    (
        "describe-objects",
        "print objects (components, instances, attempts) with their runtime fields",
        _describe_objects,
    ),
    ("query-objects", "find object ids by sphere and selectors", _query_objects),
    ("set-status", "PAUSE/RESUME components; RERUN/TRY_CANCEL/MARK_FINISHED instances", _set_status),
    ("evaluate-expression", "evaluate a #{...} expression against an object", _evaluate),
    ("add-tags", "add or replace tags on a pipeline", _add_tags),
    ("remove-tags", "remove tags from a pipeline", _remove_tags),
    ("list-runs", "list a pipeline's runs (instances), as `aws datapipeline list-runs` does", list_runs),
]


def register(sub: Any) -> None:
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, help_text, func in COMMANDS:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper()
            + help_text[1:]
            + ". Calls a running `tailrace up` over its AWS API.",
        )
        p.set_defaults(func=func)
        parsers[name] = p
    for name in set(parsers) - {"create-pipeline", "list-pipelines", "describe-pipelines"}:
        parsers[name].add_argument("--pipeline-id", required=True, metavar="ID")

    p = parsers["create-pipeline"]
    p.add_argument("--name", required=True)
    p.add_argument("--unique-id", required=True, help="a token that makes creation idempotent")
    p.add_argument("--description")
    p.add_argument("--tags", nargs="+", default=[], metavar="TAG", help="key=K,value=V (or K=V) ...")

    for name in ("put-pipeline-definition", "validate-pipeline-definition"):
        p = parsers[name]
        p.add_argument(
            "--pipeline-definition",
            required=True,
            metavar="file://FILE",
            help="the definition (file form or wire form)",
        )
        p.add_argument(
            "--parameter-objects", metavar="file://FILE", help="parameter objects replacing the definition's"
        )
        add_parameter_value_args(p)

    parsers["get-pipeline-definition"].add_argument(
        "--version", choices=["latest", "active"], default="latest"
    )

    p = parsers["activate-pipeline"]
    p.add_argument(
        "--start-timestamp", metavar="TIME", help="first period starts here (2015-04-07T00:00:00, UTC)"
    )
    add_parameter_value_args(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the periods and instances the activation would create at once, and stop there",
    )
    p.add_argument(
        "--backfill-threshold",
        type=int,
        default=BACKFILL_THRESHOLD,
        metavar="N",
        help=f"ask before creating more than N periods at once (default {BACKFILL_THRESHOLD})",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask, whatever the backfill")
    p.add_argument(
        "--show-periods",
        type=int,
        default=20,
        metavar="N",
        help="periods listed by --dry-run and the question (default 20)",
    )
    p.epilog = (
        "A past --start-timestamp (or a schedule that started in the past) backfills every missed period, "
        "oldest first. Above --backfill-threshold periods the command shows them and asks on a terminal; "
        "elsewhere it refuses (exit status 3) unless --yes is given."
    )

    p = parsers["deactivate-pipeline"]
    p.add_argument(
        "--cancel-active",
        dest="cancel_active",
        action="store_true",
        default=True,
        help="cancel running work (the default)",
    )
    p.add_argument(
        "--no-cancel-active", dest="cancel_active", action="store_false", help="let running work finish"
    )

    parsers["describe-pipelines"].add_argument("--pipeline-ids", nargs="+", required=True, metavar="ID")

    p = parsers["describe-objects"]
    p.add_argument("--object-ids", nargs="+", required=True, metavar="ID")
    p.add_argument("--evaluate-expressions", action="store_true", help="evaluate #{...} in the fields")

    p = parsers["query-objects"]
    p.add_argument("--sphere", required=True, choices=["COMPONENT", "INSTANCE", "ATTEMPT"])
    # As the AWS CLI: --query is the JMESPath filter of every command, the selectors are this.
    p.add_argument("--objects-query", metavar="JSON", help='{"selectors": [...]}, inline or file://FILE')
    p.add_argument(
        "--limit", type=int, metavar="N", help=f"page size (default {QUERY_PAGE}); every page is fetched"
    )

    p = parsers["set-status"]
    p.add_argument("--object-ids", nargs="+", required=True, metavar="ID")
    p.add_argument("--status", required=True, help="PAUSE, RESUME, RERUN, TRY_CANCEL or MARK_FINISHED")

    p = parsers["evaluate-expression"]
    p.add_argument("--object-id", required=True, metavar="ID")
    p.add_argument("--expression", required=True)

    parsers["add-tags"].add_argument(
        "--tags", nargs="+", required=True, metavar="TAG", help="key=K,value=V (or K=V)"
    )
    parsers["remove-tags"].add_argument("--tag-keys", nargs="+", required=True, metavar="KEY")

    p = parsers["list-runs"]
    p.add_argument("--status", metavar="S1,S2", help=f"only these statuses: {', '.join(LIST_RUNS_STATUSES)}")
    p.add_argument("--start-interval", metavar="START,END", help="runs that started in this interval")
    p.add_argument(
        "--schedule-interval", metavar="START,END", help="runs scheduled to start in this interval"
    )
    p.epilog = (
        "Without an interval, runs that started in the last four days are listed (as the AWS CLI does)."
    )

    for p in parsers.values():
        _client_args(p)
