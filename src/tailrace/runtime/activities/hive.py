"""HiveActivity and HiveCopyActivity on the configured script engine (engines.registry), with
the data nodes staged as tables `${input1}`, `${output1}`, ... read and written through a CSV
SerDe, as the service did."""

from __future__ import annotations

from tailrace.engines.abc import ScriptRequest, StatementResult
from tailrace.engines.metastore import TableSpec
from tailrace.errors import Location
from tailrace.expressions import ExpressionError, render
from tailrace.runtime.activities.common import flag, location, node_for, script_text
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.sandbox import ShellPlace, shell_place
from tailrace.runtime.shell import run_command
from tailrace.runtime.staging import ActivityError, require_exists


def register(registry: ActivityRegistry) -> None:
    registry.register("HiveActivity", run_hive)
    registry.register("HiveCopyActivity", run_hive_copy)


def _stage(ctx: AttemptContext, variables: dict[str, str]) -> list[TableSpec]:
    """Every input and output node as a table of this run (its name also set as a variable)."""
    comp = ctx.component
    tables: list[TableSpec] = []
    input_columns: list[list[tuple[str, str]]] = []
    for role in ("input", "output"):
        for n, node_id in enumerate(comp.refs(role), start=1):
            data = node_for(ctx, node_id)
            columns = list(data.columns)
            if not columns and role == "output" and comp.type == "HiveCopyActivity" and input_columns:
                columns = input_columns[0]  # HiveCopyActivity copies the input's shape
            if not columns:
                raise ActivityError(
                    f"{role} node '{node_id}' has no dataFormat columns; staging ${{{role}{n}}} needs them",
                    location(ctx, role),
                )
            if role == "input":
                require_exists(ctx.storage, data, role="input folder")
                input_columns.append(columns)
            name = f"{role}{n}"
            tables.append(
                TableSpec(
                    name=name,
                    columns=columns,
                    location=data.uri,
                    row_format="csv_serde",
                    field_delimiter=data.separator,
                )
            )
            variables.setdefault(name, name)
            ctx.log.write(f"staged {role} {node_id} ({data.uri}) as table {name}\n")
    return tables


def _task_config(ctx: AttemptContext, field: str) -> None:
    """preActivityTaskConfig / postActivityTaskConfig: a ShellScriptConfig run on the worker."""
    config_id = ctx.component.ref(field)
    if config_id is None:
        return
    uri = ctx.field("scriptUri", object_id=config_id)
    if not uri:
        raise ActivityError(
            "a ShellScriptConfig needs 'scriptUri'", Location(object_id=config_id, field="scriptUri")
        )
    place = shell_place(ctx.execution() if ctx.execution else None, ctx.work_dir)
    try:
        _run_task_config(ctx, place, config_id, field, uri)
    finally:
        place.close()


def _run_task_config(ctx: AttemptContext, place: ShellPlace, config_id: str, field: str, uri: str) -> None:
    script = place.cwd / f"{field}.sh"
    script.write_bytes(ctx.storage.read_bytes(uri))
    place.hand_over(script)
    args: list[str] = []
    for raw in ctx.resolved.objects[config_id].strings("scriptArgument"):
        try:
            value = render(raw, ctx.scope())
        except ExpressionError as exc:
            raise exc.at(config_id, "scriptArgument")
        args.extend([value] if isinstance(value, str) else value)
    ctx.log.write(f"{field}: {uri} {' '.join(args)}".rstrip() + "\n")
    result = run_command(
        ["/bin/bash", str(script), *args],
        cwd=place.cwd,
        env=place.env({"TAILRACE_PIPELINE_ID": ctx.pipeline_id, "TAILRACE_INSTANCE_ID": ctx.instance.id}),
        log=ctx.log,
        cancelled=ctx.cancelled,
        heartbeat=ctx.heartbeat,
        identity=place.identity,
    )
    if result.returncode != 0:
        raise ActivityError(f"{uri} exited with status {result.returncode}", location(ctx, field))


def engine_name(ctx: AttemptContext) -> str:
    """The engine of this attempt: `hive_engine`, or spark for an activity on an EmrCluster
    when `[spark] emr_cluster` is true (docs/engines.md)."""
    spark = ctx.engines.setup.settings.get("spark") if ctx.engines and ctx.engines.setup else None
    runs_on = ctx.component.ref("runsOn")
    if (
        getattr(spark, "emr_cluster", False)
        and runs_on is not None
        and runs_on in ctx.resolved.objects
        and ctx.resolved.objects[runs_on].type == "EmrCluster"
    ):
        return "spark"
    return ctx.hive_engine


def run_script(
    ctx: AttemptContext,
    script: str,
    source: str,
    variables: dict[str, str],
    stage: bool,
    hiveconf: dict[str, str] | None = None,
) -> AttemptOutcome:
    if ctx.engines is None:
        raise ActivityError("no Hive engine is configured", location(ctx, "type"))
    _task_config(ctx, "preActivityTaskConfig")
    name = engine_name(ctx)
    if name != ctx.hive_engine:
        ctx.log.write(f"engine: {name} (runsOn an EmrCluster, [spark] emr_cluster = true)\n")
    engine = ctx.engines.create(name)
    try:
        tables = _stage(ctx, variables) if stage else []

        def on_statement(res: StatementResult) -> None:
            what = f"{res.kind} {res.table}" if res.table else res.kind
            rows = (
                f": {res.rows_written:,} rows" if res.kind.startswith(("INSERT", "CREATE TABLE AS")) else ""
            )
            ctx.log.write(
                f"OK  statement {res.number} (line {res.line}) {what}{rows} ({res.seconds:.1f} s)\n"
            )
            ctx.heartbeat()
            if ctx.cancelled.is_set():  # an interrupt that fell between two queries is not lost
                raise ActivityError(
                    "the attempt was canceled; later statements were not run", location(ctx, "type")
                )

        with ctx.on_cancel(engine.interrupt):
            if ctx.cancelled.is_set():
                raise ActivityError(
                    "the attempt was canceled before its script started", location(ctx, "type")
                )
            result = engine.run(
                ScriptRequest(
                    text=script,
                    source=source,
                    variables=variables,
                    hiveconf=hiveconf or {},
                    owner=ctx.owner,
                    work_dir=ctx.work_dir / "hive",
                    log=ctx.log,
                    tables=tables,
                    cancelled=ctx.cancelled,
                    on_statement=on_statement,
                )
            )
    finally:
        engine.close()
    _task_config(ctx, "postActivityTaskConfig")
    summary = {
        "rows_written": result.rows_written,
        "malformed_lines": result.malformed_lines,
        "malformed_json": result.malformed_json,
    }
    return AttemptOutcome(status="FINISHED", summary=summary)


def run_hive(ctx: AttemptContext) -> AttemptOutcome:
    script, source = script_text(ctx, "hiveScript")
    variables: dict[str, str] = {}
    for item in ctx.fields("scriptVariable"):
        name, sep, value = item.partition("=")
        if not sep:
            raise ActivityError(
                f"scriptVariable must be NAME=value; found {item!r}", location(ctx, "scriptVariable")
            )
        variables[name.strip()] = value
    return run_script(ctx, script, source, variables, flag(ctx.field("stage"), True))


def run_hive_copy(ctx: AttemptContext) -> AttemptOutcome:
    comp = ctx.component
    nodes = ("S3DataNode", "DynamoDBDataNode")
    for role in ("input", "output"):
        refs = comp.refs(role)
        if len(refs) != 1 or ctx.resolved.objects[refs[0]].type not in nodes:
            raise ActivityError(
                f"HiveCopyActivity takes one S3DataNode or DynamoDBDataNode {role}", location(ctx, role)
            )
    in_id, out_id = comp.refs("input")[0], comp.refs("output")[0]
    if "DynamoDBDataNode" in (ctx.resolved.objects[in_id].type, ctx.resolved.objects[out_id].type):
        from tailrace.runtime.activities import dynamodb

        return dynamodb.hive_copy(ctx, in_id, out_id)
    condition = ctx.field("filterSql")
    script = "INSERT OVERWRITE TABLE ${output1} SELECT * FROM ${input1}" + (
        f" WHERE {condition}" if condition else ""
    )
    return run_script(ctx, script, f"{comp.id}.filterSql", {}, True)
