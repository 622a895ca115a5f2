"""A Spark standalone cluster on this host: one master and N workers, each its own process,
started with the pyspark package's own launcher (`bin/spark-class`). Used by the tests and the
benchmark; on a real cluster the same classes run on each host (docs/engines.md).

    with StandaloneCluster(workers=2, work_dir=tmp) as cluster:
        cluster.master_url   # spark://127.0.0.1:PORT
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tailrace.engines.spark.session import SparkUnavailable


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandaloneCluster:
    def __init__(
        self, *, workers: int = 2, cores: int = 1, memory: str = "1g", work_dir: Path, host: str = "127.0.0.1"
    ) -> None:
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.work_dir = Path(work_dir)
        self.host = host
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        home = spark_home()
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "SPARK_LOG_DIR": str(self.work_dir / "logs"),
            "SPARK_LOCAL_IP": self.host,
            "SPARK_NO_DAEMONIZE": "1",
        }
        log = (self.work_dir / "logs" / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [str(home / "bin" / "spark-class"), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the JVM and its launcher
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--webui-port",
            str(free_port()),
        )
        self._wait_port(timeout)
        for i in range(self.workers):
            wdir = self.work_dir / f"worker-{i}"
            wdir.mkdir(parents=True, exist_ok=True)
            self._spawn(
                f"worker-{i}",
                "org.apache.spark.deploy.worker.Worker",
                self.master_url,
                "--host",
                self.host,
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--webui-port",
                str(free_port()),
                "--work-dir",
                str(wdir),
            )
        self._wait_workers(timeout)
        return self

    def _wait_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[0].poll() is not None:
                raise SparkUnavailable(
                    f"the Spark master exited; see {self.work_dir / 'logs' / 'master.log'}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise SparkUnavailable(f"the Spark master did not listen on {self.port} within {timeout:.0f} s")

    def _wait_workers(self, timeout: float) -> None:
        """Until the master's log shows every worker registered."""
        deadline = time.monotonic() + timeout
        log = self.work_dir / "logs" / "master.log"
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count("Registering worker") >= self.workers:
                return
            time.sleep(0.3)
        raise SparkUnavailable(f"{self.workers} workers did not register within {timeout:.0f} s; see {log}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
