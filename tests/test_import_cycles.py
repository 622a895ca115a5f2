"""No import cycles between tailrace modules. Fails naming every cycle and the imports that make it.

What counts: every `import` / `from ... import` of a tailrace module, at module level or inside
a function. An import moved into a function still runs, and the two modules still need each
other: the cycle is hidden (and its import-order trap postponed), not removed. Imports under
`if TYPE_CHECKING:` do not count: they never run, so they cannot half-initialise a module, and
with `from __future__ import annotations` a type named in a signature is only text. Counting
them would also outlaw the usual two-way type references between a class and its helper
(firing.py names transitions.Transitions in annotations only).

`from tailrace.pkg import name` counts as an import of tailrace.pkg.name when that is a module,
else of tailrace.pkg (whose __init__ runs). Relative imports are refused by test_layers.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tailrace"

KNOWN: dict[frozenset[str], str] = {}
"""Cycles another change in flight removes. An entry that no longer matches a cycle fails
test_known_cycles_are_still_there, so it cannot outlive its cycle."""


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, anywhere, except in the body of `if TYPE_CHECKING:`."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """module -> {imported tailrace module: line of the first such import}."""
    paths = {module_name(p, root.parent): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        edges: dict[str, int] = {}
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                if target in paths and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, {}))
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, {}))
    return seen


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Groups of two or more modules that each reach the others through imports (a few hundred
    modules: reachability from each is quick enough)."""
    reach = {module: _reachable(graph, module) for module in graph}
    placed: set[str] = set()
    found: list[list[str]] = []
    for module in sorted(graph):
        if module in placed:
            continue
        group = sorted({module} | {other for other in reach[module] if module in reach.get(other, ())})
        placed.update(group)
        if len(group) > 1:
            found.append(group)
    return found


def _describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    members = set(component)
    edges = [
        f"    {a} line {line} imports {b}"
        for a in component
        for b, line in sorted(graph[a].items())
        if b in members
    ]
    return " <-> ".join(component) + "\n" + "\n".join(edges)


def test_no_import_cycles():
    graph = import_graph()
    found = [c for c in cycles(graph) if frozenset(c) not in KNOWN]
    assert not found, "import cycles between tailrace modules:\n" + "\n".join(
        _describe(c, graph) for c in found
    )


def test_known_cycles_are_still_there():
    present = {frozenset(c) for c in cycles(import_graph())}
    stale = [sorted(k) for k in KNOWN if k not in present]
    assert not stale, f"these cycles are gone: remove them from KNOWN in {Path(__file__).name}: {stale}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "src" / "tailrace"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_cycles_through_functions_but_not_type_checking(tmp_path):
    root = _tree(
        tmp_path,
        {
            "a.py": "from tailrace.b import x\n",
            "b.py": "def f():\n    from tailrace import a\n",
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tailrace.d import y\n",
            "d.py": "import tailrace.c\n",
            "pkg/__init__.py": "",
            "pkg/e.py": "from tailrace.pkg import f\n",
            "pkg/f.py": "from tailrace.pkg.e import z\n",
        },
    )
    graph = import_graph(root)
    assert graph["tailrace.b"] == {"tailrace.a": 2}
    assert cycles(graph) == [["tailrace.a", "tailrace.b"], ["tailrace.pkg.e", "tailrace.pkg.f"]]
