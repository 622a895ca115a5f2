"""The runtime's modules import each other without cycles and use only each other's public names
(AST-based, like tests/test_layers.py). Imports under `if TYPE_CHECKING:` do not run and do not
count; imports inside functions do."""

from __future__ import annotations

import ast
import graphlib
import itertools
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
RUNTIME = "tailrace.runtime"


def modules(src: Path, package: str) -> dict[str, Path]:
    root = src.joinpath(*package.split("."))
    found: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skipped.update(id(n) for n in ast.walk(stmt))
    return skipped


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class Scan:
    """Imports among the modules of one package: the graph and the private names used."""

    def __init__(self, src: Path, package: str) -> None:
        self.mods = modules(src, package)
        self.graph: dict[str, set[str]] = {m: set() for m in self.mods}
        self.private: list[str] = []
        for name, path in sorted(self.mods.items()):
            self._scan(name, path)

    def _scan(self, name: str, path: Path) -> None:
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = _type_checking_only(tree)
        module_aliases: dict[str, str] = {}
        where = f"{path.relative_to(SRC.parent) if path.is_relative_to(SRC.parent) else path}"
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in self.mods:
                        self._edge(name, alias.name)
                        if alias.asname:
                            module_aliases[alias.asname] = alias.name
                        if any(p.startswith("_") for p in alias.name.split(".")):
                            self.private.append(f"{where}:{node.lineno} imports {alias.name}")
            elif isinstance(node, ast.ImportFrom) and node.module in self.mods:
                self._edge(name, node.module)
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in self.mods:
                        self._edge(name, full)
                        module_aliases[alias.asname or alias.name] = full
                    if alias.name.startswith("_") and node.module != name:
                        self.private.append(f"{where}:{node.lineno} imports {alias.name} from {node.module}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                target = module_aliases[node.value.id]
                self.private.append(f"{where}:{node.lineno} uses {target}.{node.attr}")

    def _edge(self, importer: str, target: str) -> None:
        # Importing a.b.c runs the packages a.b first, unless they are the importer's own.
        for pkg in [*_ancestors(target), target]:
            if pkg in self.mods and pkg != importer and pkg not in _ancestors(importer):
                self.graph[importer].add(pkg)

    def cycle(self) -> list[str]:
        """One circle of imports (first module repeated at the end), or [] when there is none."""
        try:
            graphlib.TopologicalSorter(self.graph).prepare()
        except graphlib.CycleError as exc:
            return list(exc.args[1])
        return []


def test_the_runtime_has_no_import_cycles():
    cycle = Scan(SRC, RUNTIME).cycle()
    assert not cycle, "modules importing each other round a circle: " + " -> ".join(reversed(cycle))


def test_runtime_modules_use_only_each_others_public_names():
    private = Scan(SRC, RUNTIME).private
    assert not private, "private names used across modules (make them public or move them):\n" + "\n".join(
        private
    )


def test_the_checker_finds_cycles_and_private_names(tmp_path):
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from demo.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from demo import a\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from demo import c\n"
        "if TYPE_CHECKING:\n    from demo.d import _Hidden\n"
        "def f():\n    from demo.c import _helper\n    return c._secret\n"
    )
    (pkg / "c.py").write_text("from demo.sub import thing\n_secret = 1\n")  # runs demo/sub/__init__
    (pkg / "d.py").write_text("from demo import a\n")  # a imports d only for type checking
    scan = Scan(tmp_path, "demo")
    cycle = scan.cycle()
    # a -> c -> sub (its __init__) -> sub.b -> a; each module in the list is imported by the next.
    assert cycle[0] == cycle[-1] and set(cycle) == {"demo.a", "demo.c", "demo.sub", "demo.sub.b"}
    assert all(imported in scan.graph[importer] for imported, importer in itertools.pairwise(cycle))
    assert [p.split(" ", 1)[1] for p in scan.private] == [
        "imports _helper from demo.c",
        "uses demo.c._secret",
    ]
