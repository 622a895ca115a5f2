"""The docs' generated tables match the code: the sample results in docs/compatibility.md and the
object types in docs/definitions.md. Run this file directly to print both tables afresh."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tailrace.definition import OBJECT_TYPES, Category, Problem, load_file, validate

ROOT = Path(__file__).resolve().parents[2]
from compat_samples import SAMPLES, require_samples  # noqa: E402

require_samples()

REASONS = [
    (
        lambda p: p.message.startswith(("raw ", "trailing comma")) or "appears more than once" in p.message,
        "non-strict JSON",
    ),
    (lambda p: "cannot run on this installation" in p.message, "cannot run here"),
    (lambda p: "is deprecated" in p.message, "deprecated type"),
    (lambda p: "has no value and no default" in p.message, "unset parameter"),
    (lambda p: "not declared in 'parameters' and has no value" in p.message, "undeclared parameter"),
    (lambda p: p.message.startswith("a value is given for"), "value for an undeclared parameter"),
    (lambda p: "must start with 'my'" in p.message, "parameter id without 'my'"),
    (lambda p: "'scriptArgument' with 'scriptUri'" in p.message, "scriptArgument with scriptUri"),
    (lambda p: "ondemand pipelines do not use schedules" in p.message, "schedule ignored (ondemand)"),
]


def _reason(p: Problem) -> str:
    for test, label in REASONS:
        if test(p):
            return label
    return p.message


def _where(problems: list[Problem]) -> str:
    spots = [f"{p.object_id}:{p.line}" + (f":{p.column}" if p.column else "") for p in problems if p.line]
    return f" ({', '.join(spots[:4])}{', ...' if len(spots) > 4 else ''})" if spots else ""


def sample_rows() -> list[str]:
    rows = ["| File | Loads as | Result | Errors | Warnings |", "|---|---|---|---|---|"]
    for path in sorted(SAMPLES.glob("*.json")):
        defn = load_file(path)
        report = validate(defn)
        kind = {
            "definition": f"definition ({defn.form} form)",
            "values": "values only",
            "parameters": "parameters only",
        }[defn.kind]
        result = "invalid" if report.errored else "valid"

        def summary(problems: list[Problem]) -> str:
            groups: dict[str, list[Problem]] = {}
            for p in problems:
                groups.setdefault(_reason(p), []).append(p)
            parts = []
            for label, items in groups.items():
                types = Counter(
                    p.message.split(" ")[0] for p in items if label in ("cannot run here", "deprecated type")
                )
                detail = (
                    (": " + ", ".join(f"{t}×{n}" if n > 1 else t for t, n in types.items())) if types else ""
                )
                where = (
                    _where(items)
                    if label in ("non-strict JSON", "parameter id without 'my'")
                    or not any(label == r[1] for r in REASONS)
                    else ""
                )
                count = f" ×{len(items)}" if len(items) > 1 and not detail else ""
                parts.append(f"{label}{count}{detail}{where}")
            return "; ".join(parts) or "none"

        rows.append(
            f"| {path.name} | {kind} | {result} | {summary(report.errors)} | {summary(report.warnings)} |"
        )
    return rows


def _runs(t: object) -> str:
    if not getattr(t, "runs_here", True):
        return "no (warning)"
    return "with limits" if getattr(t, "limited", False) else "yes"


def type_rows() -> list[str]:
    rows = [
        "| Type | Category | Runs here | How (or why not) | Required | DG page |",
        "|---|---|---|---|---|---|",
    ]
    order = list(Category)
    for t in sorted(OBJECT_TYPES.values(), key=lambda t: (order.index(t.category), t.name)):
        required = list(t.required) + [" or ".join(g) for g in t.one_of]
        rows.append(
            f"| {t.name} | {t.category.value} | {_runs(t)} | {t.note}"
            f"{' (deprecated: ' + t.deprecated + ')' if t.deprecated else ''} | {', '.join(required) or '-'} | "
            f"{t.doc_page} |"
        )
    return rows


def _section(path: Path, name: str) -> list[str]:
    text = path.read_text()
    m = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert m, f"{path} has no <!-- {name}:begin/end --> markers"
    return m.group(1).strip().splitlines()


def test_compatibility_table_matches_the_samples():
    expected = sample_rows()
    assert _section(ROOT / "docs" / "compatibility.md", "samples") == expected, "\n".join(expected)


def test_definitions_doc_lists_every_type_and_whether_it_runs_here():
    expected = type_rows()
    assert _section(ROOT / "docs" / "definitions.md", "types") == expected, "\n".join(expected)
    assert len(expected) == 2 + len(OBJECT_TYPES) == 43


if __name__ == "__main__":
    print("\n".join(sample_rows()))
    print()
    print("\n".join(type_rows()))
