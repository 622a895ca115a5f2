"""Helpers of the console tests: starting processes, signed-in sessions, a browser tab."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"


def until(what: str, fn: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Retry fn until it returns something truthy (another process acting), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def tailrace(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tailrace", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Server:
    def __init__(self, url: str, env: dict[str, str], home: Path) -> None:
        self.url = url
        self.env = env
        self.home = home

    def session(self, name: str, password: str = PASSWORD) -> tuple[requests.Session, str]:
        """A signed-in HTTP session and its CSRF token."""
        s = requests.Session()
        r = s.post(
            self.url + "/console/login",
            data={"kind": "user", "name": name, "password": password, "next": "/console"},
        )
        assert r.status_code == 200, r.text
        return s, csrf_of(r.text)


def csrf_of(text: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', text)
    assert m, text[:500]
    return m.group(1)


def start(args: list[str], env: dict[str, str], log: Path, pattern: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tailrace", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(pattern, line)
        if m:
            return proc, m.group(1)
    raise AssertionError("the process exited:\n" + log.read_text())


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Tab:
    """A page in a fresh browser context (its own cookies) that records dialogs and errors."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.server = server
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str) -> Any:
        return self.page.goto(self.server.url + path)

    def login(self, name: str, password: str = PASSWORD) -> None:
        self.go("/console/login")
        self.page.fill("#login-user [name=name]", name)
        self.page.fill("#login-user [name=password]", password)
        self.page.click("#login-user button")

    def assert_nothing_ran(self) -> None:
        assert self.page.evaluate("typeof window.__pwned") == "undefined"
        assert self.dialogs == []

    def upload(self, name: str, definition: dict[str, Any] | bytes) -> None:
        data = definition if isinstance(definition, bytes) else json.dumps(definition).encode()
        self.go("/console/new")
        self.page.fill("#from-file [name=name]", name)
        self.page.set_input_files(
            "#from-file [name=definition]",
            {"name": "def.json", "mimeType": "application/json", "buffer": data},
        )
        self.page.click("#from-file button")

    def close(self) -> None:
        self.context.close()
