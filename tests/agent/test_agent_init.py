"""`tailrace agent init`: the README's agent step runs as written (a sample config and log), and
the docs' example config loads without warnings."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from tailrace.agent.configfile import load_config
from tailrace.cli.main import run
from tailrace.services import build_services

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agent.md"


def test_init_then_check_drain_and_status_as_the_readme_shows(home, capsys):
    assert run(["agent", "init"], build_services) == 0
    assert (Path("agent.toml")).exists() and Path("logs/access_log").exists()
    lines = Path("logs/access_log").read_text().splitlines()
    assert len(lines) > 100
    capsys.readouterr()
    assert run(["agent", "-c", "agent.toml", "--check"], build_services) == 0
    assert "warning" not in capsys.readouterr().err
    assert run(["agent", "-c", "agent.toml", "--drain", "-q"], build_services) == 0
    shipped = sorted((home / "s3" / "sample-logs" / "access").rglob("*.gz"))
    assert shipped, "nothing was shipped"
    got = [line for p in shipped for line in gzip.decompress(p.read_bytes()).decode().splitlines()]
    assert len(got) == len(lines)  # every line exactly once
    assert run(["agent", "status", "-c", "agent.toml"], build_services) == 0
    assert f"lines_read       {len(lines)}" in capsys.readouterr().out
    # A second init does not overwrite the config without --force.
    assert run(["agent", "init"], build_services) != 0
    assert run(["agent", "init", "--force"], build_services) == 0


def test_agent_without_a_config_says_how_to_get_one(home, capsys):
    assert run(["agent"], build_services) != 0
    assert "tailrace agent init" in capsys.readouterr().err


def test_the_docs_example_config_loads_without_warnings(tmp_path):
    text = DOCS.read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S)
    assert example is not None
    path = tmp_path / "agent.toml"
    path.write_text(example.group(1))
    config = load_config(path, home=tmp_path / "home", hostname="web1")
    assert not config.warnings, config.warnings
