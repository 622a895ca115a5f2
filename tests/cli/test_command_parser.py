"""The parser of one command: `tailrace CMD ...` imports only commands/CMD.py when that module
registers CMD, and parses exactly as the parser of every command does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tailrace.cli.main import _command_word, _commands, _parser_for, build_parser


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["hive", "-e", "select 1"], "hive"),
        (["--home", "hive", "run", "x.json"], "run"),  # an option's value is not the command
        (["--home=/h", "--debug", "hive", "-e", "x"], "hive"),
        (["--config", "c.toml", "--database-url", "sqlite://", "s3", "restore"], "s3"),
        (["--hom", "/h", "hive"], None),  # abbreviated: the full parser decides
        (["-h", "hive"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_command_word(argv: list[str], word: str | None):
    assert _command_word(argv) == word


def test_one_module_registers_only_its_command():
    assert _commands(build_parser("hive")) == {"hive"}
    assert _commands(_parser_for(["hive", "-e", "select 1"])) == {"hive"}
    every = _commands(build_parser())
    assert {"hive", "run", "list-runs"} <= every
    # `list-runs` is registered by a module of another name: the parser of every command.
    assert _commands(_parser_for(["list-runs"])) == every
    assert _commands(_parser_for(["--hom", "/h", "hive", "-e", "x"])) == every


@pytest.mark.parametrize(
    "argv",
    [
        ["hive", "-S", "-f", "a.q", "-d", "DATE=1", "--hiveconf", "k=v", "--threads", "2"],
        ["--home", "/h", "--debug", "hive", "-e", "select 1", "--engine", "spark", "--master", "local[2]"],
        ["s3", "restore", "s3://bucket/key", "--days", "2"],
        ["run", "pipeline.json"],
    ],
)
def test_same_namespace_as_the_parser_of_every_command(argv: list[str]):
    one, every = vars(_parser_for(argv).parse_args(argv)), vars(build_parser().parse_args(argv))
    assert one.pop("func") is every.pop("func")
    assert one == every


def test_usage_errors_are_the_same(capsys: pytest.CaptureFixture[str]):
    for parser in (_parser_for(["hive"]), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args(["hive", "--no-such-flag", "-e", "x"])
    one, every = capsys.readouterr().err.split("usage: ")[1:]
    assert one == every


def test_hive_loads_no_other_command_or_state_module(tmp_path: Path):
    """`tailrace hive -e` in a fresh interpreter: no other command module, none of the state
    store beyond its engine (the metastore's database), no UDF modules the query does not call."""
    code = textwrap.dedent(
        """
        import json, sys
        from tailrace.__main__ import main
        sys.argv = ["tailrace", "hive", "-S", "-e", "select 1"]
        try:
            main()
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        print(json.dumps(sorted(sys.modules)))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
    env["TAILRACE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "1"
    loaded = set(json.loads(out[-1]))
    assert "tailrace.cli.commands.hive" in loaded and "tailrace.state.engine" in loaded  # it ran
    commands = {m for m in loaded if m.startswith("tailrace.cli.commands.")}
    assert commands == {"tailrace.cli.commands.hive"}
    state = {m for m in loaded if m.startswith("tailrace.state.")}
    assert state == {"tailrace.state.engine"}
    # Modules only some functions need load with them (udfs.ensure, functions._xpath).
    assert not {"cryptography", "tailrace.engines.hive.udfs_bytes", "tailrace.engines.hive.xpath"} & loaded
