"""The runtime answers in records and enums; the AWS wire shapes of the reads are built in
tailrace.api.aws. A wire member name in a runtime module means a shape crept back in."""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "tailrace" / "runtime"
WIRE_MEMBERS = frozenset(
    {
        "stringValue",
        "refValue",
        "hasMoreResults",
        "taskObject",
        "pipelineIdList",
        "pipelineDescriptionList",
        "evaluatedExpression",
    }
)


def test_no_runtime_module_writes_a_wire_member():
    found = [
        f"{path.relative_to(RUNTIME)}:{node.lineno} {node.value!r}"
        for path in sorted(RUNTIME.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in WIRE_MEMBERS
    ]
    assert not found, "AWS wire shapes belong in tailrace.api.aws:\n" + "\n".join(found)
