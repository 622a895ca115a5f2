"""`pip install .` from a clone gives a working tailrace: a wheel builds and carries its data
files (the seed pipeline, the Hive script, the console's pages and scripts)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_a_wheel_builds_and_runs_from_outside_the_clone(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("tailrace-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {"tailrace/sample/log-pipeline.json", "tailrace/sample/whatislog.q"}
    assert wanted <= names, wanted - names
    source_data = {
        p.relative_to(REPO / "src").as_posix()
        for p in (REPO / "src" / "tailrace").rglob("*")
        if p.suffix in (".json", ".q", ".html", ".js", ".css", ".sql") and "__pycache__" not in p.parts
    }
    assert source_data <= names, f"data files left out of the wheel: {sorted(source_data - names)}"
    # Installed (without dependencies: they are this venv's) into a directory of its own, and run
    # from elsewhere: the command works without the clone's src/ on the path.
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env["PYTHONPATH"] = str(target)
    env["TAILRACE_HOME"] = str(tmp_path / "home")
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tailrace, sys; print(tailrace.__file__); sys.argv=['tailrace','validate',"
            "str(__import__('pathlib').Path(tailrace.__file__).parent/'sample'/'log-pipeline.json')];"
            "from tailrace.__main__ import main; raise SystemExit(main())",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines()[0].startswith(str(target)), ran.stdout
