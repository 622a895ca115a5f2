"""`tailrace hive` pauses the cyclic GC while its engine loads, and only then."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tailrace.__main__ import build_services
from tailrace.cli.main import run


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["hive", "-S", "-e", "select 1"], 0),
        (["hive", "-S", "-f", "no-such-script.q"], 2),  # fails while loading
        (["hive", "-S", "-e", "select 1", "--master", "local[1]"], 2),
    ],
)
def test_collections_resume_after_the_engine_loads(tmp_path: Path, argv: list[str], code: int):
    assert gc.isenabled()
    seen: list[bool] = []
    real = build_services

    def services(settings):  # built while the engine loads
        seen.append(gc.isenabled())
        return real(settings)

    assert run(["--home", str(tmp_path / "home"), *argv], services) == code
    assert gc.isenabled()
    assert seen == ([False] if code == 0 else [])


def test_collections_stay_off_when_they_were_off(tmp_path: Path):
    gc.disable()
    try:
        assert run(["--home", str(tmp_path / "home"), "hive", "-S", "-e", "select 1"], build_services) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_process_exits_with_the_modules_frozen(tmp_path: Path):
    """`python -m tailrace` freezes what it loaded before the interpreter's teardown (which
    would otherwise collect it all); atexit handlers still run."""
    code = textwrap.dedent(
        """
        import atexit, gc, sys
        atexit.register(lambda: print("frozen", gc.get_freeze_count() > 10000))
        sys.argv = ["tailrace", "--home", sys.argv[1], "hive", "-S", "-e", "select 1"]
        from tailrace.__main__ import main
        main()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "home")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["1", "frozen True"]
