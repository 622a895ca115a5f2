"""`tailrace validate FILE`: check a definition as PutPipelineDefinition would, and list every problem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailrace.cli.params import add_parameter_value_args, parameter_values_from_args

if TYPE_CHECKING:
    from tailrace.definition import PipelineDefinition, Problem, ValidationReport


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check a pipeline definition and list every error and warning",
        description="Load a pipeline definition (file form, API wire form, or a parameters or values "
        "file) and check it as PutPipelineDefinition does: object types and fields, references, "
        "schedules, parameters and expressions. Prints errors, then warnings; exits 1 on errors.",
    )
    p.add_argument("file", metavar="FILE", help="definition file (JSON)")
    add_parameter_value_args(p)
    p.add_argument(
        "--parameter-objects",
        metavar="FILE",
        help="parameter declarations that replace the definition's 'parameters' (file://path or a path)",
    )
    p.add_argument(
        "--activation",
        action="store_true",
        help="also check what ActivatePipeline needs: every parameter used has a value",
    )
    p.add_argument("--output", choices=["text", "json"], default="text", help="text (default) or json")
    p.set_defaults(func=_run)


def _path(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    from tailrace.definition import DefinitionError, load_file, validate

    try:
        values = parameter_values_from_args(args, ctx)
        defn = load_file(args.file)
        if args.parameter_objects:
            defn = _with_parameters(defn, load_file(_path(args.parameter_objects)))
    except DefinitionError as exc:
        return _print(exc.report, args)
    report = validate(defn, values or None, activation=args.activation)
    return _print(report, args, defn)


def _with_parameters(defn: PipelineDefinition, source: PipelineDefinition) -> PipelineDefinition:
    from tailrace.definition import PipelineDefinition

    return PipelineDefinition(
        objects=defn.objects,
        parameters=source.parameters,
        values=defn.values,
        metadata=defn.metadata,
        source=defn.source,
        warnings=defn.warnings + source.warnings,
        form=defn.form,
    )


def _print(report: ValidationReport, args: argparse.Namespace, defn: PipelineDefinition | None = None) -> int:
    if args.output == "json":
        print(json.dumps(report.to_aws(), indent=2))
        return 1 if report.errored else 0
    for p in [*report.errors, *report.warnings]:
        print(_line(p))
    print(_summary(report, args.file, defn))
    return 1 if report.errored else 0


def _line(p: Problem) -> str:
    from tailrace.definition.problems import FILE_LEVEL_ID

    text = f"{p.severity.upper()}  {p.object_id or FILE_LEVEL_ID}  {p.field or '-'}  {p.message}"
    return f"{text} ({p.where})" if p.line is not None else text


def _summary(report: ValidationReport, file: str, defn: PipelineDefinition | None) -> str:
    if defn is None:
        return f"{file}: could not be loaded: {report.summary()}"
    counts = report.counts
    if report.kind == "values":
        what = f"a parameter values file ({counts.get('values', 0)} values; nothing else to check)"
    elif report.kind == "parameters":
        what = f"a parameters file ({counts.get('parameters', 0)} parameters)"
    else:
        what = (
            f"{counts.get('objects', 0)} objects, {counts.get('parameters', 0)} parameters, "
            f"{counts.get('values', 0)} values ({defn.form} form)"
        )
    verdict = "invalid" if report.errored else "valid"
    return f"{file}: {verdict}: {what}: {report.summary()}"
