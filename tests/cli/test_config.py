"""tailrace.toml: typed top-level settings and sections, unknown names refused with "did you mean",
environment over file over nothing, flags over both; `tailrace config` prints every section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailrace.cli.main import run as cli
from tailrace.config import ExecutionSettings, Settings, load_settings
from tailrace.errors import ConfigError
from tailrace.services import build_services


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tailrace.toml"
    path.write_text(text)
    return path


def test_sections_are_typed_and_layered(tmp_path):
    path = toml(tmp_path, 'port = 9000\nhome = "/tmp/x"\n[execution]\nlease = 30\npoll = 0.5\n')
    s = load_settings(environ={"TAILRACE_EXECUTION__POLL": "0.25"}, config_file=path)
    assert s.port == 9000 and s.home == Path("/tmp/x")
    assert s.execution == ExecutionSettings(lease=30.0, poll=0.25, grace=10.0)
    assert isinstance(s.execution.lease, float)
    assert load_settings(environ={}, config_file=toml(tmp_path, "")).execution == ExecutionSettings()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[executoin]\nlease = 3\n", "unknown section 'executoin'. Did you mean 'execution'?"),
        ("[execution]\nleese = 3\n", "unknown key 'leese' in [execution]. Did you mean 'lease'?"),
        ("prot = 1\n", "unknown key 'prot'. Did you mean 'port'?"),
        ("[execution]\nlease = 'soon'\n", "'execution.lease' has value 'soon'; expected float"),
        ("port = 'x'\n", "'port' has value 'x'; expected int"),
        ("execution = 3\n", "'execution' is a section; write it as [execution]"),
        ("[port]\nx = 1\n", "'port' is a setting, not a section"),
        ("[execution]\nlease = 0\n", "[execution] lease must be positive"),
    ],
)
def test_unknown_or_mistyped_names_are_errors(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        load_settings(environ={}, config_file=toml(tmp_path, text))
    assert expected in str(err.value)
    assert str(tmp_path / "tailrace.toml") in str(err.value)


def test_environment_errors_name_the_variable_kind(tmp_path):
    with pytest.raises(ConfigError, match=r"environment.*'execution.grace' has value 'long'"):
        load_settings(environ={"TAILRACE_EXECUTION__GRACE": "long"}, config_file=toml(tmp_path, ""))


def test_config_prints_every_section_and_masks_secrets(home, tmp_path, capsys, monkeypatch):
    toml(tmp_path, "[execution]\ngrace = 3\n")
    monkeypatch.setenv("TAILRACE_SECRET_ACCESS_KEY", "s3cr3t-value")
    monkeypatch.setenv("TAILRACE_DATABASE_URL", "postgresql://u:hunter2@db/x")
    assert cli(["config"], build_services) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["execution.grace"] == "3.0" and lines["execution.lease"] == "120.0"
    assert "s3cr3t-value" not in out and "hunter2" not in out
    assert lines["database_url"] == "postgresql://u:****@db/x"
    assert cli(["config", "--output", "json"], build_services) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["execution"] == {
        "lease": 120.0,
        "poll": 1.0,
        "grace": 3.0,
        "run_as": None,
        "users": {},
        "allow_root": False,
        "work_root": None,
        "network": "auto",
    }


def test_every_section_is_a_frozen_dataclass_with_defaults():
    # Adding a section is a frozen dataclass and one field: the loader needs nothing else.
    s = Settings()
    with pytest.raises(AttributeError):
        s.execution.lease = 1.0  # type: ignore[misc]
    assert load_settings(environ={}, config_file=None, overrides={"port": None}).execution == s.execution


def test_unknown_file_on_the_command_line_is_an_error(tmp_path, capsys):
    assert cli(["--config", str(tmp_path / "nope.toml"), "config"], build_services) != 0
    assert "nope.toml does not exist" in capsys.readouterr().err
