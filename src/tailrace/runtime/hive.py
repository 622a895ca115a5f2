"""HiveActivity and HiveCopyActivity on the Hive engine (DuckDB), with the data nodes staged as
tables `${input1}`, `${output1}`, ... read and written through a CSV SerDe, as the service did."""

from __future__ import annotations

from typing import Any

from tailrace.errors import Location
from tailrace.expressions import ExpressionError, render
from tailrace.runtime.activities import _bool, _loc, _script_text, activity, node_for
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.sandbox import ShellPlace, shell_place
from tailrace.runtime.shell import run_command
from tailrace.runtime.staging import ActivityError, require_exists


def _stage(ctx: AttemptContext, engine: Any, variables: dict[str, str]) -> list[list[tuple[str, str]]]:
    """Register every input and output node as a session table; returns the inputs' columns."""
    from tailrace.engines.hive import TableSpec

    comp = ctx.component
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
                    _loc(ctx, role),
                )
            if role == "input":
                require_exists(ctx.storage, data, role="input folder")
                input_columns.append(columns)
            name = f"{role}{n}"
            engine.register_table(
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
    return input_columns


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
        raise ActivityError(f"{uri} exited with status {result.returncode}", _loc(ctx, field))


def _run(
    ctx: AttemptContext, script: str, source: str, variables: dict[str, str], stage: bool
) -> AttemptOutcome:
    if ctx.hive_engine_factory is None:
        raise ActivityError("no Hive engine is configured", _loc(ctx, "type"))
    _task_config(ctx, "preActivityTaskConfig")
    engine = ctx.hive_engine_factory()
    try:
        if stage:
            _stage(ctx, engine, variables)

        def on_statement(res: Any) -> None:
            what = f"{res.kind} {res.table}" if res.table else res.kind
            rows = (
                f": {res.rows_written:,} rows" if res.kind.startswith(("INSERT", "CREATE TABLE AS")) else ""
            )
            ctx.log.write(
                f"OK  statement {res.number} (line {res.line}) {what}{rows} ({res.seconds:.1f} s)\n"
            )
            ctx.heartbeat()

        result = engine.run_script(
            script,
            variables,
            source=source,
            echo=lambda line: ctx.log.write(line + "\n"),
            on_statement=on_statement,
            echo_statements=True,
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


@activity("HiveActivity")
def run_hive(ctx: AttemptContext) -> AttemptOutcome:
    script, source = _script_text(ctx, "hiveScript")
    variables: dict[str, str] = {}
    for item in ctx.fields("scriptVariable"):
        name, sep, value = item.partition("=")
        if not sep:
            raise ActivityError(
                f"scriptVariable must be NAME=value; found {item!r}", _loc(ctx, "scriptVariable")
            )
        variables[name.strip()] = value
    return _run(ctx, script, source, variables, _bool(ctx.field("stage"), True))


@activity("HiveCopyActivity")
def run_hive_copy(ctx: AttemptContext) -> AttemptOutcome:
    comp = ctx.component
    for role in ("input", "output"):
        refs = comp.refs(role)
        if len(refs) != 1 or ctx.resolved.objects[refs[0]].type != "S3DataNode":
            raise ActivityError(
                f"HiveCopyActivity runs here with one S3DataNode {role} (DynamoDB nodes cannot be reached)",
                _loc(ctx, role),
            )
    condition = ctx.field("filterSql")
    script = "INSERT OVERWRITE TABLE ${output1} SELECT * FROM ${input1}" + (
        f" WHERE {condition}" if condition else ""
    )
    return _run(ctx, script, f"{comp.id}.filterSql", {}, True)
