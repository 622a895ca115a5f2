"""A real `tailrace up` (SQLite home) with console users, and one Chromium for the package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from console_helpers import CHROMIUM_ARGS, PASSWORD, Server, Tab, start, stop, tailrace


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("console")
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
    env.update(TAILRACE_HOME=str(home), PYTHONUNBUFFERED="1")
    proc, url = start(
        ["up", "--port", "0", "--poll", "0.2"], env, tmp / "up.log", r"listening on (http://\S+)"
    )
    try:
        for name, extra in (
            ("alice", []),
            ("reader", ["--role", "readonly"]),
            ("bob", ["--owner", "other"]),
            ("root", ["--role", "admin"]),
        ):
            tailrace(env, "users", "create", name, "--password-stdin", *extra, stdin=PASSWORD + "\n")
        yield Server(url, env, home)
    finally:
        stop(proc)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    t = Tab(browser, server)
    yield t
    t.close()
