"""Helpers of the live-feed tests: console processes, a logged-in page that reports to the test,
events committed from the server side."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailrace.events.model import AlarmStateChanged, Broadcast, Event
from tailrace.state import SqlStateStore

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "src"
REDIS_URL = os.environ.get("TAILRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHROMIUM = "/usr/bin/chromium"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One console process (uvicorn) with its base URL."""

    def __init__(self, db_url: str, stream: str | None, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{HERE}", "LIVE_DB_URL": db_url}
        if stream:
            env.update(LIVE_REDIS_URL=REDIS_URL, LIVE_STREAM=stream)
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "liveapp:build",
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/console/static/live.js", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"console process did not start:\n{log.read_text()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def commit(store: SqlStateStore, *events: Event) -> None:
    """Commit events to the outbox, as any part of the service does."""
    with store.transaction() as tx:
        for event in events:
            tx.events.append(event)


def alarm(
    name: str, *, owner: str | None = "alice", new: str = "ALARM", reason: str = "Threshold Crossed"
) -> Event:
    return AlarmStateChanged(
        at=datetime.now(UTC),
        owner=owner,
        alarm_name=name,
        old="OK",
        new=new,
        reason=reason,
        region="us-east-1",
    )


def broadcast(text: str, *, owner: str | None = None, sender: str = "ops") -> Event:
    return Broadcast(at=datetime.now(UTC), owner=owner, text=text, sender=sender)


# An init script (added before the page loads: not a user gesture) that reports to the test,
# through console messages, what the page does with Web Audio, every `tr:event` it dispatches,
# the live root's state, and any script an XSS payload managed to run. The test never evaluates
# script in the page, nor uses an exposed binding: Playwright evaluates with a user gesture (a
# binding's reply too), which would lift the autoplay rule (`probe` checks that it stays on).
INSTRUMENT = """
(() => {
  const report = (kind, data) => console.debug('__tr ' + JSON.stringify({kind, ...data}));
  window.__trXss = () => report('xss', {});
  const Ctx = window.AudioContext;
  window.AudioContext = class extends Ctx {
    constructor(...a) { super(...a); report('audio', {op: 'context', state: this.state}); }
    async resume() { await super.resume(); report('audio', {op: 'resumed', state: this.state}); }
    createOscillator() {
      const osc = super.createOscillator();
      const start = osc.start.bind(osc), stop = osc.stop.bind(osc);
      osc.start = (...a) => { report('audio', {op: 'start'}); return start(...a); };
      osc.stop = (...a) => { report('audio', {op: 'stop'}); return stop(...a); };
      return osc;
    }
  };
  document.addEventListener('tr:event', (e) => {
    // Would audio start without a gesture now? (A context made here stays suspended unless the
    // page had a user activation: proof the test itself gave it none.)
    const probe = e.detail.alarm ? new Ctx().state : null;
    report('event', {event: e.detail, probe});
  });
  const watch = () => {
    const root = document.getElementById('tr-live');
    if (!root) return;
    const send = () => report('state', {state: {...root.dataset}, text: root.innerText});
    new MutationObserver(send).observe(root, {attributes: true, childList: true, subtree: true, characterData: true});
    send();
  };
  document.addEventListener('DOMContentLoaded', watch);
})();
"""


class LivePage:
    """A page of the test app in its own browser context, and what it reported."""

    def __init__(self, browser: Any, server: Server, user: str | None) -> None:
        """`user` None: no login cookie (the stream is refused until one is added)."""
        self.reports: list[dict[str, Any]] = []
        self.context = browser.new_context()
        if user is not None:
            self.context.add_cookies([{"name": "tr_user", "value": user, "url": server.url}])
        self.context.add_init_script(INSTRUMENT)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.goto(server.url + "/")
        if user is not None:
            self.wait(lambda: self.state.get("connection") == "open" and "lastEventId" in self.state)

    def _console(self, message: Any) -> None:
        if message.text.startswith("__tr "):
            self.reports.append(json.loads(message.text[5:]))

    def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last state {self.state}, reports {self.reports[-5:]}")
            self.page.wait_for_timeout(50)  # lets Playwright deliver the page's reports

    @property
    def state(self) -> dict[str, str]:
        found = [r["state"] for r in self.reports if r["kind"] == "state"]
        return found[-1] if found else {}

    @property
    def text(self) -> str:
        found = [r["text"] for r in self.reports if r["kind"] == "state"]
        return found[-1] if found else ""

    def events(self, type_name: str | None = None) -> list[dict[str, Any]]:
        return [
            r["event"]
            for r in self.reports
            if r["kind"] == "event" and (type_name is None or r["event"]["type"] == type_name)
        ]

    def audio(self, op: str) -> int:
        return sum(1 for r in self.reports if r["kind"] == "audio" and r["op"] == op)

    @property
    def xss(self) -> int:
        return sum(1 for r in self.reports if r["kind"] == "xss")

    def close(self) -> None:
        self.context.close()


def wait_history(server: Server, user: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The console's history for `user` once it holds `count` events (the hub follows the outbox
    asynchronously: a commit shows there within a poll)."""
    deadline = time.monotonic() + timeout
    while True:
        req = urllib.request.Request(
            server.url + "/console/live/history", headers={"Cookie": f"tr_user={user}"}
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            events: list[dict[str, Any]] = json.loads(res.read())["events"]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


class RoundRobin:
    """A plain TCP load balancer for tests: each new connection goes to the next backend that
    accepts it (no stickiness), bytes piped both ways by two threads."""

    def __init__(self, ports: list[int]) -> None:
        import threading

        self.ports = ports
        self.turn = 0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _backend(self) -> socket.socket | None:
        for _ in range(len(self.ports)):
            port = self.ports[self.turn % len(self.ports)]
            self.turn += 1
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
        return None

    def _accept(self) -> None:
        import threading

        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            backend = self._backend()
            if backend is None:
                conn.close()
                continue
            backend.settimeout(None)
            for a, b in ((conn, backend), (backend, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()
