"""`tailrace up` with api_processes = 3 on PostgreSQL: two more processes serve the API on the
same socket (they answer while the first process is stopped), and they end with it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import client_for

from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"serve-api" in cmdline:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.postgres
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_api_served_by_several_processes(tmp_path):
    reason = postgres_available(PG_URL)
    if reason:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
    with temporary_schema(PG_URL) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILRACE_", "AWS_"))}
        env.update(
            TAILRACE_HOME=str(tmp_path / "home"),
            TAILRACE_DATABASE_URL=url,
            TAILRACE_API_PROCESSES="3",
            PYTHONUNBUFFERED="1",
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tailrace",
                "up",
                "--s3-port",
                "off",
                "--port",
                "0",
                "--worker-group",
                "none",
                "--no-resources",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            url_line = next(line for line in proc.stdout if "listening on" in line)
            endpoint = re.search(r"(http://\S+)", url_line).group(1)
            creds = json.loads((tmp_path / "home" / "credentials.json").read_text())

            class Key:
                access_key_id = creds["AccessKeyId"]
                secret_access_key = creds["SecretAccessKey"]

            dp = client_for(endpoint, Key)
            pid = dp.create_pipeline(name="p", uniqueId="p")["pipelineId"]
            children = _children(proc.pid)
            assert len(children) == 2
            os.kill(proc.pid, signal.SIGSTOP)  # the first process cannot accept anything now
            try:
                for _ in range(10):
                    fresh = client_for(endpoint, Key)  # a new connection each time
                    got = fresh.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
                    assert got[0]["pipelineId"] == pid
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        for child in children:
            try:
                os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                pass
            assert (
                not Path(f"/proc/{child}").exists()
                or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
            )


def test_an_api_process_says_when_it_accepts(tmp_path):
    """`serve(ready_fd=...)`: the byte comes once uvicorn accepts, and a request then answers."""
    import select
    import threading
    import urllib.request

    import uvicorn

    from tailrace.api.server import _AnnouncingServer, _config, bind

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sock = bind("127.0.0.1", 0)
    read_end, write_end = os.pipe()
    server = _AnnouncingServer(_config(app, "warning"), write_end)
    assert isinstance(server, uvicorn.Server)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert select.select([read_end], [], [], 60)[0], "no byte on the ready pipe"
        assert os.read(read_end, 8) == b"."
        assert server.started
        assert os.read(read_end, 8) == b""  # written once, then closed
        port = sock.getsockname()[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            assert answer.read() == b"ok"
    finally:
        server.should_exit = True
        thread.join(30)
        os.close(read_end)
        sock.close()


def test_waiting_for_api_processes_counts_bytes_and_stops_at_end_of_file():
    import threading

    from tailrace.api.server import _wait_ready

    read_end, write_end = os.pipe()

    def one_then_gone():
        os.write(write_end, b".")
        os.close(write_end)  # the second process died before accepting

    thread = threading.Thread(target=one_then_gone)
    thread.start()
    try:
        assert _wait_ready(read_end, 2, 60) == 1
    finally:
        thread.join()
        os.close(read_end)


def test_waiting_for_api_processes_gives_up_after_its_timeout():
    from tailrace.api.server import _wait_ready

    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b".")
        assert _wait_ready(read_end, 3, 0.05) == 1  # the others never answer; the pipe stays open
    finally:
        os.close(read_end)
        os.close(write_end)
