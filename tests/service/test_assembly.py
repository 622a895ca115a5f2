"""Process assembly (tailrace.processes): loops start in order and stop in reverse, a failed start
undoes what started, a loop that ends stops the process; `tailrace scheduler` and `worker` stop
cleanly on SIGTERM within the grace period; [execution] in tailrace.toml sets the flags' defaults."""

from __future__ import annotations

import signal
import threading

import pytest
from test_processes import Cluster, wait_until

from tailrace.config import Settings
from tailrace.processes import Assembly, Loop, RuntimeOptions, ThreadLoop
from tailrace.services import Services


class Recorder(Loop):
    def __init__(self, name: str, log: list[str], *, fail: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail = fail

    def start(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    def stop(self, timeout: float | None = None) -> None:
        assert timeout is not None and timeout > 0  # every stop is bounded by the grace period
        self.log.append(f"stop {self.name}")


def test_loops_start_in_order_and_stop_in_reverse():
    log: list[str] = []
    assembly = Assembly("p", [Recorder(n, log) for n in ("relay", "api", "scheduler", "runners")], grace=1)
    assembly.start()
    assembly.stop()
    assert log == [
        "start relay",
        "start api",
        "start scheduler",
        "start runners",
        "stop runners",
        "stop scheduler",
        "stop api",
        "stop relay",
    ]
    assembly.stop()  # stopping twice does nothing more
    assert len(log) == 8


def test_a_loop_that_cannot_start_stops_those_already_started():
    log: list[str] = []
    loops = [Recorder("a", log), Recorder("b", log), Recorder("c", log, fail=True), Recorder("d", log)]
    with pytest.raises(RuntimeError, match="c cannot start"):
        Assembly("p", loops, grace=1).start()
    assert log == ["start a", "start b", "stop b", "stop a"]


def test_a_thread_loop_that_ends_by_itself_stops_the_process():
    finished = threading.Event()

    def short(stop: threading.Event) -> None:
        finished.wait(5)

    def crashes(stop: threading.Event) -> None:
        raise ValueError("bad input")  # logged; the process stops instead of hanging half-alive

    for run in (short, crashes):
        seen: list[str] = []
        assembly = Assembly("p", [ThreadLoop("x", run)], grace=1)
        assembly.start()
        finished.set()
        code = assembly.serve(threading.Event(), say=seen.append)
        assert code == 0 and seen == ["p: stopping (Ctrl-C again to stop at once)", "p: stopped"]
        finished.clear()


def test_a_thread_loop_stops_when_asked():
    ran = threading.Event()

    def forever(stop: threading.Event) -> None:
        ran.set()
        stop.wait()

    loop = ThreadLoop("forever", forever)
    assembly = Assembly("p", [loop], grace=1)
    assembly.start()
    assert ran.wait(5)
    stop = threading.Event()
    stop.set()
    assembly.serve(stop, say=lambda line: None)
    assert not loop.ended  # stopped on request, not by itself
    assert loop._thread is not None and not loop._thread.is_alive()


def test_up_is_api_then_scheduler_then_task_runners(tmp_path):
    services = Services(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path}/s.db"))
    try:
        up = services.processes.up(RuntimeOptions(grace=0.5), host="127.0.0.1", port=0, workers=2)
        assert [loop.name for loop in up.loops] == [
            "api",
            "api processes",
            "scheduler",
            "task runners",
            "failure log",
            "notifications",
            "lifecycle",
        ]
        assert [
            loop.name
            for loop in services.processes.up(RuntimeOptions(), host="h", port=1, workers=1, http=False).loops
        ] == [
            "scheduler",
            "task runners",
            "failure log",
            "notifications",
            "lifecycle",
        ]
        up.start()
        banner = up.banner()
        assert (
            banner[0]
            == "scheduler and 2 task runner(s) for every worker group, local pools for runsOn resources"
        )
        assert banner[-1].startswith("listening on http://127.0.0.1:")
        up.stop()
        assert not up.started
    finally:
        services.close()


@pytest.mark.parametrize("command", [("scheduler",), ("worker", "--worker-group", "wg", "--resources")])
def test_processes_stop_cleanly_on_sigterm(tmp_path, command):
    cluster = Cluster(f"sqlite:///{tmp_path}/state.db", tmp_path / "home")
    try:
        (tmp_path / "home" / "tailrace.toml").write_text("[execution]\ngrace = 0.5\npoll = 0.1\n")
        proc = cluster.start("--config", str(tmp_path / "home" / "tailrace.toml"), *command)
        name = f"tailrace {command[0]}"
        wait_until(lambda: f"{name}: " in cluster.output(proc), what=f"{name} to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        out = cluster.output(proc)
        assert f"{name}: stopping" in out and f"{name}: stopped" in out
    finally:
        cluster.close()


def test_up_serves_the_s3_api_when_given_a_port(tmp_path):
    import boto3

    from tailrace.api.keys import KeyStore
    from tailrace.clock import SystemClock

    services = Services(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path}/s.db"))
    try:
        up = services.processes.up(RuntimeOptions(grace=0.5), host="127.0.0.1", port=0, workers=1, s3_port=0)
        assert "s3 api" in [loop.name for loop in up.loops]
        key = KeyStore(services.state, SystemClock()).create("carol")
        up.start()
        try:
            url = next(line for line in up.banner() if line.startswith("S3 API")).rsplit(" ", 1)[1]
            s3 = boto3.client(
                "s3",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id=key.access_key_id,
                aws_secret_access_key=key.secret_access_key,
            )
            s3.create_bucket(Bucket="carols")
            s3.put_object(Bucket="carols", Key="a/b", Body=b"hi")
            assert services.storage.read_bytes("s3://carols/a/b") == b"hi"
        finally:
            up.stop()
    finally:
        services.close()
