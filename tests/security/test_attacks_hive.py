"""Hive variable substitution as a second owner sees it: `${env:NAME}` must not read the server."""

from __future__ import annotations

import pytest

from tailrace.engines.hive.script import Variables, owner_environ


def test_env_variables_of_an_owner_script_never_read_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILRACE_TEST_SERVER_SECRET", "server-env-secret-7f3a9c")
    monkeypatch.setenv("TZ", "UTC")
    owner = Variables(environ=owner_environ())
    text = owner.substitute("SELECT '${env:TAILRACE_TEST_SERVER_SECRET}', '${env:TZ}'").text
    assert "server-env-secret" not in text
    assert "${env:TAILRACE_TEST_SERVER_SECRET}" in text and "'UTC'" in text
    # the single-user `tailrace hive` keeps Hive's behaviour
    assert "server-env-secret" in Variables().substitute("SELECT '${env:TAILRACE_TEST_SERVER_SECRET}'").text
