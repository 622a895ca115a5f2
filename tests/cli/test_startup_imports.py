"""The CLI starts fast: building the parser and printing any command's `--help` must not load the
heavy layers (definitions, expressions, plan, state, storage, engines, runtime, ...) or the big
third-party packages. Command modules import those inside their handlers, not at module level.

Each check runs in a fresh interpreter, since this test process has most of them loaded already.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tailrace.cli import commands
from tailrace.cli.main import _module_names

FORBIDDEN = (
    "tailrace.definition",
    "tailrace.expressions",
    "tailrace.plan",
    "tailrace.state",
    "tailrace.storage",
    "tailrace.engines",
    "tailrace.runtime",
    "tailrace.agent",
    "tailrace.api",
    "tailrace.sample",
    "duckdb",
    "sqlalchemy",
    "boto3",
    "botocore",
)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def _assert_light(loaded: set[str]) -> None:
    heavy = _heavy(loaded)
    top = sorted({next(f for f in FORBIDDEN if m == f or m.startswith(f + ".")) for m in heavy})
    assert not heavy, (
        f"start-up loaded {', '.join(top)} ({len(heavy)} modules, e.g. {', '.join(heavy[:5])}); "
        "import them inside the command's handler, not at module level"
    )


def _python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env["TAILRACE_HOME"] = str(cwd / "home")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _modules_after(code: str, cwd: Path) -> set[str]:
    """The modules loaded after running `code` in a fresh interpreter."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    proc = _python(["-c", script], cwd)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_forbidden_modules_exist():
    # A renamed package would make the checks below pass vacuously.
    for name in FORBIDDEN:
        if name.startswith("tailrace."):
            assert importlib.util.find_spec(name) is not None, name


def test_build_parser_imports_no_heavy_module(tmp_path: Path):
    loaded = _modules_after(
        """
        from tailrace.cli.main import build_parser
        build_parser()
        """,
        tmp_path,
    )
    assert "tailrace.cli.commands.run" in loaded  # the commands were registered
    _assert_light(loaded)


def test_every_help_imports_no_heavy_module(tmp_path: Path):
    """`tailrace --help` and `tailrace CMD [ACTION] --help` for every command, through the entry point."""
    loaded = _modules_after(
        """
        import argparse, contextlib, io
        from tailrace.__main__ import build_services
        from tailrace.cli.main import build_parser, run

        def paths(parser, prefix):
            yield prefix
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        yield from paths(sub, [*prefix, name])

        seen = 0
        for path in paths(build_parser(), []):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    run([*path, "--help"], build_services)
                except SystemExit as exc:
                    assert exc.code == 0, (path, exc.code)
            assert out.getvalue().startswith("usage: tailrace"), path
            seen += 1
        assert seen > 20, seen
        """,
        tmp_path,
    )
    _assert_light(loaded)


@pytest.mark.parametrize("argv", [["--help"], ["list-runs", "--help"], ["run", "--help"], ["--version"]])
def test_python_m_tailrace_imports_no_heavy_module(tmp_path: Path, argv: list[str]):
    proc = _python(["-X", "importtime", "-m", "tailrace", *argv], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("usage: tailrace", "tailrace "))
    loaded = {
        line.split("|")[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "tailrace.cli.main" in loaded
    _assert_light(loaded)


def test_module_names_match_pkgutil():
    """build_parser lists cli/commands/ itself (pkgutil.iter_modules imports `inspect`); same names."""
    expected = sorted(info.name for info in pkgutil.iter_modules(commands.__path__))
    assert _module_names(list(commands.__path__)) == expected
