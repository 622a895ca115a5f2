"""The console's pipeline page with 10,000 instances: time to first render and to interactive
in Chromium (headless, the system browser), against `tailrace console` on a SQLite home.

The pipeline has 5 activities on a 15-minute schedule and 2,000 periods of instances (10,000
in all; every 7th failed after 3 attempts, the rest finished), written straight into the store.
Each run opens the page in a fresh tab: the latest periods, then an older page (paging through
the backfill), then the latest periods with an instance and an object selected.

    .venv/bin/python bench/console_page.py [--runs 7]

Figures (from the browser's Navigation Timing and Paint Timing):
  server    request sent -> last byte of the HTML (the server's share)
  first     first contentful paint
  ready     the page's module scripts ran (console.js sets window.trConsoleReady): interactive
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler_common import machine, workspace, write_section

COMPONENTS = 5
PERIODS = 2000
PASSWORD = "bench password"
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


def seed(home: Path) -> str:
    from tailrace.console.users import UserStore
    from tailrace.definition import from_file_dict
    from tailrace.runtime.service import PipelineService
    from tailrace.state import Instance, PipelineState, SqlStateStore, Status
    from tailrace.state.engine import create_engine

    store = SqlStateStore(create_engine(f"sqlite:///{home}/tailrace.db"))
    service = PipelineService(store=store, home=home)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    objects: list[dict[str, Any]] = [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "every15"}},
        {"id": "every15", "type": "Schedule", "period": "15 minutes", "startDateTime": "2024-01-01T00:00:00"},
    ]
    for c in range(COMPONENTS):
        obj: dict[str, Any] = {"id": f"step{c}", "type": "ShellCommandActivity", "workerGroup": "wg"}
        obj["command"] = "echo #{@scheduledStartTime}"
        if c:
            obj["dependsOn"] = {"ref": f"step{c - 1}"}
        objects.append(obj)
    pid = service.create_pipeline("bench 10k", "bench-10k", owner="default")
    report = service.put_definition(pid, from_file_dict({"objects": objects}))
    assert not report.errored, report
    now = datetime.now(UTC)
    rows = []
    for w in range(PERIODS):
        s = start + timedelta(minutes=15 * w)
        for c in range(COMPONENTS):
            failed = (w * COMPONENTS + c) % 7 == 0
            rows.append(
                Instance(
                    pipeline_id=pid,
                    id=f"@step{c}_{s.strftime('%Y-%m-%dT%H:%M:%S')}",
                    component_id=f"step{c}",
                    category="ACTIVITY",
                    type="ShellCommandActivity",
                    window=w,
                    scheduled_start=s,
                    scheduled_end=s + timedelta(minutes=15),
                    run_at=s + timedelta(minutes=15),
                    status=Status.FAILED if failed else Status.FINISHED,
                    definition_version=1,
                    attempt_count=3 if failed else 1,
                    started_at=s,
                    ended_at=s + timedelta(minutes=1),
                    error_message="exit 1" if failed else None,
                    created_at=now,
                    updated_at=now,
                )
            )
    with store.transaction() as tx:
        assert tx.instances.add_many(rows) == len(rows)
        # As if activated at the start: the instances' definition is the active one.
        tx.pipelines.update(pid, state=PipelineState.SCHEDULED, active_version=1, activated_at=start)
    UserStore(store.engine).create("bench", PASSWORD, role="admin")
    store.close()
    return pid


def measure(page: Any, url: str) -> dict[str, float]:
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, (url, response and response.status, page.inner_text("main"))
    page.wait_for_function("() => window.trConsoleReady === true")
    t = page.evaluate(
        """() => {
        const n = performance.getEntriesByType('navigation')[0];
        const p = performance.getEntriesByName('first-contentful-paint')[0];
        return {server: n.responseEnd - n.requestStart, first: p ? p.startTime : NaN,
                ready: performance.now(), cells: document.querySelectorAll('a.cell').length,
                bytes: n.transferSize};
    }"""
    )
    return t  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with workspace("tailrace-console-") as home:
        pid = seed(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILRACE_")}
        env.update(TAILRACE_HOME=str(home), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tailrace", "console", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            base = ""
            for line in proc.stdout:
                if m := re.search(r"listening on (http://\S+)/console", line):
                    base = m.group(1)
                    break
            results = run_browser(sync_playwright, base, pid, args.runs)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    report(results, args.runs)


def run_browser(sync_playwright: Any, base: str, pid: str, runs: int) -> dict[str, list[dict[str, float]]]:
    older = "2024-01-10T00:00:00"
    pages = {
        "latest periods": f"{base}/console/pipelines/{pid}",
        "an older page (?to=)": f"{base}/console/pipelines/{pid}?to={older}",
        "instance + object selected": f"{base}/console/pipelines/{pid}?instance=%40step2_2024-01-21T19%3A45%3A00&object=step2",
    }
    out: dict[str, list[dict[str, float]]] = {k: [] for k in pages}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        ctx = browser.new_context()
        login = ctx.new_page()
        login.goto(base + "/console/login")
        login.fill("#login-user [name=name]", "bench")
        login.fill("#login-user [name=password]", PASSWORD)
        login.click("#login-user button")
        login.close()
        for _ in range(runs):
            for name, url in pages.items():
                tab = ctx.new_page()
                out[name].append(measure(tab, url))
                tab.close()
        browser.close()
    return out


def report(results: dict[str, list[dict[str, float]]], runs: int) -> None:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    lines = [
        "## Console pages (bench/console_page.py)",
        "",
        f"{machine()}; Chromium (system, headless); `tailrace console` on SQLite; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at end {os.getloadavg()[0]:.2f}.",
        f"Pipeline page of a pipeline with {COMPONENTS * PERIODS:,} instances ({COMPONENTS} activities x "
        f"{PERIODS:,} periods of 15 minutes); median (max) of {runs} fresh tabs each. server = request to last "
        "byte of the HTML; first render = first contentful paint; interactive = page scripts ran.",
        "",
        "| page | cells shown | HTML | server | first render | interactive |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        lines.append(
            f"| {name} | {int(rows[0]['cells'])} | {rows[0]['bytes'] / 1024:.0f} KiB "
            f"| {med(rows, 'server'):.0f} ms ({max(r['server'] for r in rows):.0f}) "
            f"| {med(rows, 'first'):.0f} ms ({max(r['first'] for r in rows):.0f}) "
            f"| {med(rows, 'ready'):.0f} ms ({max(r['ready'] for r in rows):.0f}) |"
        )
    text = "\n".join(lines)
    print(text)
    write_section("console_page", text)


if __name__ == "__main__":
    main()
