"""DESIGN.md's layer rule: imports point down only. Fails naming the module and the import."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tailrace"

LAYERS: dict[str, int] = {
    "__init__": 0,
    "errors": 0,
    "clock": 0,
    "ids": 0,
    "config": 0,
    "periodic": 0,
    "limits": 0,
    "httpwire": 0,
    "definition": 1,
    "expressions": 1,
    "plan": 2,
    "state": 3,
    "storage": 3,
    "engines": 3,
    "formats": 3,
    "events": 3,
    "runtime": 4,
    "agent": 5,
    "lifecycle": 5,
    "notify": 5,
    "api": 5,
    "console": 5,
    "cli": 5,
    "sample": 5,
    "services": 6,
    "processes": 6,
    "__main__": 6,
}


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tailrace")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tailrace":
                # `from tailrace import x`: x is a subpackage, or a name of the package root.
                found += [
                    (node.lineno, f"tailrace.{a.name}" if a.name in LAYERS else "tailrace.__init__")
                    for a in node.names
                ]
            elif node.module.startswith("tailrace."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: use absolute 'tailrace.' imports, not relative ones")
    return found


def test_every_package_has_a_layer():
    units = {_unit(p) for p in SRC.rglob("*.py")}
    missing = sorted(units - LAYERS.keys())
    assert not missing, f"add these to LAYERS (and to DESIGN.md): {missing}"


def test_imports_point_down_only():
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        own = _unit(path)
        for lineno, target in _imports(path):
            parts = target.split(".")
            if len(parts) < 2:
                continue
            other = parts[1]
            if LAYERS.get(other, 99) > LAYERS[own]:
                violations.append(
                    f"{path.relative_to(SRC.parent)}:{lineno} ({own}, layer {LAYERS[own]}) imports "
                    f"{target} (layer {LAYERS.get(other)})"
                )
    assert not violations, "imports pointing up a layer:\n" + "\n".join(violations)


def test_the_checker_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from tailrace.runtime import scheduler\nimport tailrace.cli.main\n")
    targets = [t for _, t in _imports(bad)]
    assert targets == ["tailrace.runtime", "tailrace.cli.main"]
    assert LAYERS["runtime"] > LAYERS["storage"]
