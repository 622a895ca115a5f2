"""Not a benchmark: regenerates the screenshots of docs/console.md by following that page on a
fresh data directory (demo data, `tailrace up`, a user, the seed pipeline, a failing one).

    .venv/bin/python bench/console_screenshots.py
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAILING = """{"objects": [
  {"id": "Default", "scheduleType": "ondemand"},
  {"id": "count-hits", "type": "ShellCommandActivity", "workerGroup": "local", "maximumRetries": "0",
   "command": "echo counting hits; ls /no/such/dir"}
]}"""


def until(fn: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)
    return value


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
        env.update(TAILRACE_HOME=str(Path(tmp) / "home"), PYTHONUNBUFFERED="1")
        run = [sys.executable, "-m", "tailrace"]
        subprocess.run([*run, "demo"], env=env, check=True, capture_output=True)
        up = subprocess.Popen([*run, "up", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert up.stdout is not None
            url = next(
                m.group(1) for line in up.stdout if (m := re.search(r"listening on (http://\S+)", line))
            )
            subprocess.run(
                [*run, "users", "create", "admin", "--role", "admin", "--password-stdin"],
                env=env,
                input="choose a long one\n",
                text=True,
                check=True,
                capture_output=True,
            )
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                shoot(page, url, Path(tmp))
                browser.close()
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(30)


def shoot(page: Any, url: str, tmp: Path) -> None:
    page.goto(url + "/console")
    page.screenshot(path=DOCS / "console-login.png")
    page.fill("#login-user [name=name]", "admin")
    page.fill("#login-user [name=password]", "choose a long one")
    page.click("#login-user button")
    page.goto(url + "/console/new")
    page.fill("#from-template [name=name]", "web logs")
    page.click("#from-template button")
    page.click("#activate-form button")
    page.screenshot(path=DOCS / "console-activate.png")
    page.click("#confirm-form button")
    pipeline = page.url.split("?")[0]

    def done() -> bool:
        page.goto(pipeline)
        return page.locator("a.cell.st-ok").count() >= 12

    until(done)
    page.goto(pipeline + "?object=stats&instance=%40stats_2012-12-26T00%3A00%3A00#grid")
    page.screenshot(path=DOCS / "console-pipeline.png")
    page.locator("#grid").screenshot(path=DOCS / "console-grid.png")
    page.goto(url + "/console")
    failing = tmp / "failing.json"
    failing.write_text(FAILING)
    page.goto(url + "/console/new")
    page.fill("#from-file [name=name]", "failing")
    page.set_input_files("#from-file [name=definition]", str(failing))
    page.click("#from-file button")
    page.click("#activate-form button")
    page.click("#confirm-form button")
    failed = page.url.split("?")[0]

    def failed_cell() -> bool:
        page.goto(failed)
        return page.locator("a.cell.st-fail").count() > 0

    until(failed_cell)
    page.locator("a.cell.st-fail").first.click()
    page.wait_for_selector("#log")
    page.locator("#instance").screenshot(path=DOCS / "console-log.png")
    page.goto(url + "/console")
    page.screenshot(path=DOCS / "console-list.png")


if __name__ == "__main__":
    main()
