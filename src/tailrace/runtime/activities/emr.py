"""EmrActivity: the EMR steps that have a meaning here, run on the configured Spark master.

A step is a comma-separated `JAR,ARG,...` (a `\\,` is a comma inside an argument). Two forms run:

- `command-runner.jar,spark-submit,...`: `spark-submit --master <[spark] master> ...` in the
  attempt's place (the owner's OS user on the service); the application jar or .py and any
  --jars/--py-files/--files given as s3:// are copied from the store first.
- `...script-runner.jar,...hive-script,--run-hive-script,--args,-f,s3://...,-d,K=V` and
  `command-runner.jar,hive-script,--run-hive-script,--args,-f,...`: the script runs through the
  script engine, like a HiveActivity without staging.

Any other step (a custom jar, a Hadoop streaming step...) is refused before anything runs, naming
the step. preStepCommand / postStepCommand run as shell commands around the steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tailrace.errors import TailraceError
from tailrace.runtime.activities.common import location
from tailrace.runtime.activities.hive import run_script
from tailrace.runtime.activities.registry import ActivityRegistry
from tailrace.runtime.context import AttemptContext, AttemptOutcome
from tailrace.runtime.sandbox import ShellPlace, shell_place
from tailrace.runtime.shell import run_command
from tailrace.runtime.staging import ActivityError

_DROPPED_WITH_VALUE = {"--master": "the configured [spark] master is used", "--deploy-mode": "client mode"}
_LOCALIZED_LISTS = ("--jars", "--py-files", "--files")


def register(registry: ActivityRegistry) -> None:
    registry.register("EmrActivity", run_emr)


def split_step(step: str) -> list[str]:
    """`a,b\\,c,d` -> ['a', 'b,c', 'd'] (EMR steps escape commas inside arguments)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(step):
        ch = step[i]
        if ch == "\\" and i + 1 < len(step) and step[i + 1] == ",":
            cur.append(",")
            i += 2
            continue
        if ch == ",":
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur).strip())
    return parts


def classify(step: str, number: int) -> tuple[str, list[str]]:
    """('spark-submit' | 'hive-script', arguments) or ActivityError naming the step."""
    parts = split_step(step)
    jar = parts[0]
    jar_name = jar.rsplit("/", 1)[-1]
    rest = parts[1:]
    label = f"step {number} ({jar})"
    if jar_name == "command-runner.jar" and rest:
        command = rest[0].rsplit("/", 1)[-1]
        if command == "spark-submit":
            return "spark-submit", rest[1:]
        if command == "hive-script":
            return "hive-script", rest[1:]
        raise ActivityError(
            f"{label} runs '{rest[0]}': command-runner.jar steps run here only with spark-submit or "
            "hive-script"
        )
    if jar_name == "script-runner.jar" and rest and rest[0].rsplit("/", 1)[-1] == "hive-script":
        return "hive-script", rest[1:]
    raise ActivityError(
        f"{label} cannot run here: only command-runner.jar spark-submit steps and hive-script steps "
        "(--run-hive-script) run on this installation; other jars need a Hadoop cluster"
    )


def hive_arguments(args: list[str], label: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(script URI, variables, hiveconf) from hive-script's arguments."""
    if "--run-hive-script" not in args or "--args" not in args:
        raise ActivityError(f"{label}: a hive-script step needs --run-hive-script --args -f <script URI>")
    cli = args[args.index("--args") + 1 :]
    script: str | None = None
    variables: dict[str, str] = {}
    hiveconf: dict[str, str] = {}
    i = 0
    while i < len(cli):
        flag = cli[i]
        value = cli[i + 1] if i + 1 < len(cli) else None
        if flag in ("-f", "-d", "--define", "--hivevar", "-hivevar", "--hiveconf", "-hiveconf"):
            if value is None:
                raise ActivityError(f"{label}: {flag} needs a value")
            if flag == "-f":
                script = value
            else:
                name, eq, v = value.partition("=")
                if not eq:
                    raise ActivityError(f"{label}: {flag} needs NAME=VALUE; found {value!r}")
                (hiveconf if "hiveconf" in flag else variables)[name.strip()] = v
            i += 2
            continue
        raise ActivityError(f"{label}: unknown hive argument {flag!r} (expected -f, -d, --hiveconf)")
    if script is None:
        raise ActivityError(f"{label}: a hive-script step needs -f <script URI>")
    return script, variables, hiveconf


def _spark_settings(ctx: AttemptContext) -> Any:
    return ctx.engines.setup.settings.get("spark") if ctx.engines and ctx.engines.setup else None


def run_emr(ctx: AttemptContext) -> AttemptOutcome:
    steps = ctx.fields("step")
    if not steps:
        raise ActivityError("EmrActivity needs at least one 'step'", location(ctx, "step"))
    # Every step is checked before the first one runs: a refused step fails the attempt at once.
    plan = []
    for n, step in enumerate(steps, start=1):
        try:
            plan.append((n, *classify(step, n)))
        except ActivityError as exc:
            raise ActivityError(str(exc), location(ctx, "step"))
    summary: dict[str, Any] = {"steps": len(plan)}
    _shell(ctx, "preStepCommand")
    for n, kind, args in plan:
        label = f"step {n} ({kind})"
        ctx.log.write(f"{label}: starting\n")
        if kind == "hive-script":
            uri, variables, hiveconf = hive_arguments(args, label)
            try:
                text = ctx.storage.read_bytes(uri).decode("utf-8")
            except TailraceError as exc:
                raise ActivityError(f"{label}: cannot read {uri}: {exc}", location(ctx, "step"))
            outcome = run_script(ctx, text, uri, variables, False, hiveconf)
            summary["rows_written"] = summary.get("rows_written", 0) + int(outcome.summary["rows_written"])
        else:
            _spark_submit(ctx, args, label)
        ctx.log.write(f"{label}: done\n")
    _shell(ctx, "postStepCommand")
    return AttemptOutcome(status="FINISHED", summary=summary)


def _spark_submit(ctx: AttemptContext, args: list[str], label: str) -> None:
    settings = _spark_settings(ctx)
    master = getattr(settings, "master", None) or "local[*]"
    if master.startswith("sc://"):
        raise ActivityError(
            f"{label}: spark-submit steps need a spark:// or local master; [spark] master is {master}",
            location(ctx, "step"),
        )
    place = shell_place(ctx.execution() if ctx.execution else None, ctx.work_dir)
    try:
        argv = [str(_spark_home() / "bin" / "spark-submit"), "--master", master]
        for k, v in sorted(dict(getattr(settings, "conf", {}) or {}).items()):
            argv += ["--conf", f"{k}={v}"]
        argv += _submit_args(ctx, place, args, label)
        ctx.log.write(f"{label}: {' '.join(argv[1:])}\n")
        result = run_command(
            argv,
            cwd=place.cwd,
            env=place.env({"TAILRACE_PIPELINE_ID": ctx.pipeline_id, "TAILRACE_INSTANCE_ID": ctx.instance.id}),
            log=ctx.log,
            cancelled=ctx.cancelled,
            heartbeat=ctx.heartbeat,
            identity=place.identity,
        )
    finally:
        place.close()
    if result.returncode != 0:
        raise ActivityError(
            f"{label}: spark-submit exited with status {result.returncode}", location(ctx, "step")
        )


def _submit_args(ctx: AttemptContext, place: ShellPlace, args: list[str], label: str) -> list[str]:
    """The step's spark-submit arguments: --master/--deploy-mode dropped (said in the log), the
    application and its --jars/--py-files/--files copied from the store when they are s3://."""
    out: list[str] = []
    i = 0
    app_seen = False
    while i < len(args):
        arg = args[i]
        if not app_seen and arg in _DROPPED_WITH_VALUE:
            ctx.log.write(
                f"{label}: {arg} {args[i + 1] if i + 1 < len(args) else ''} ignored "
                f"({_DROPPED_WITH_VALUE[arg]})\n"
            )
            i += 2
            continue
        if not app_seen and arg in _LOCALIZED_LISTS and i + 1 < len(args):
            out += [arg, ",".join(_local(ctx, place, u, label) for u in args[i + 1].split(","))]
            i += 2
            continue
        if not app_seen and arg.startswith("--"):
            out.append(arg)
            if i + 1 < len(args) and not args[i + 1].startswith("--") and "=" not in arg:
                out.append(args[i + 1])
                i += 1
            i += 1
            continue
        if not app_seen:
            app_seen = True
            out.append(_local(ctx, place, arg, label))
        else:
            out.append(arg)
        i += 1
    if not app_seen:
        raise ActivityError(
            f"{label}: spark-submit needs an application (a jar or a .py file)", location(ctx, "step")
        )
    return out


def _local(ctx: AttemptContext, place: ShellPlace, uri: str, label: str) -> str:
    if "://" not in uri:
        return uri
    target = place.cwd / "app" / uri.rstrip("/").rsplit("/", 1)[-1]
    try:
        data = ctx.storage.read_bytes(uri)
    except TailraceError as exc:
        raise ActivityError(f"{label}: cannot read {uri}: {exc}", location(ctx, "step"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    place.hand_over(target.parent)
    place.hand_over(target)
    return str(target)


def _spark_home() -> Path:
    home = os.environ.get("SPARK_HOME")
    if home:
        return Path(home)
    try:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        raise ActivityError("spark-submit steps need pyspark (pip install 'tailrace[spark]') or SPARK_HOME")
    return Path(spec.origin).parent


def _shell(ctx: AttemptContext, field: str) -> None:
    commands = ctx.fields(field)
    if not commands:
        return
    place = shell_place(ctx.execution() if ctx.execution else None, ctx.work_dir)
    try:
        for command in commands:
            ctx.log.write(f"{field}: {command}\n")
            result = run_command(
                ["/bin/sh", "-c", command],
                cwd=place.cwd,
                env=place.env({"TAILRACE_PIPELINE_ID": ctx.pipeline_id}),
                log=ctx.log,
                cancelled=ctx.cancelled,
                heartbeat=ctx.heartbeat,
                identity=place.identity,
            )
            if result.returncode != 0:
                raise ActivityError(f"{field} exited with status {result.returncode}", location(ctx, field))
    finally:
        place.close()
