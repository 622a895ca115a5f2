"""Running the app: uvicorn on a socket we bind ourselves (so port 0 works and the address is
known before the first request), in a background thread or in the foreground."""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import uvicorn

log = logging.getLogger(__name__)


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket. With `reuse_port`, independent processes may each bind the same
    address (SO_REUSEPORT) and the kernel spreads connections between them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from tailrace.errors import ConfigError

        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(app: Any, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=30,
        server_header=False,
    )


class _AnnouncingServer(uvicorn.Server):
    """uvicorn that writes one byte to `ready_fd` (then closes it) once it accepts connections."""

    def __init__(self, config: uvicorn.Config, ready_fd: int | None) -> None:
        super().__init__(config)
        self.ready_fd = ready_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.ready_fd is not None and self.started:
            fd, self.ready_fd = self.ready_fd, None
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)


class ApiServer:
    """uvicorn in a daemon thread: `start()` returns once it accepts connections; `stop()` drains."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.sock = bind(host, port)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(_config(app, log_level))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ApiServer:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="tailrace-api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # uvicorn has no start event to wait on
        if not self.server.started:
            raise RuntimeError(f"the API server did not start on {self.url}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        close_polls = getattr(getattr(self.server.config.app, "state", None), "close_polls", None)
        if close_polls is not None:
            close_polls()  # a waiting PollForTask answers now rather than holding the shutdown
        if self._thread is not None:
            self._thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "info",
    sock: socket.socket | None = None,
    reuse_port: bool = False,
    parent_pid: int | None = None,
    ready_fd: int | None = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C / SIGTERM) on `sock` (an inherited
    listening socket) or a new one on host:port; with `parent_pid`, also stop when that process
    is gone (an API process of `tailrace up` never outlives it); with `ready_fd`, write a byte
    to it once accepting."""
    sock = sock or bind(host, port, reuse_port=reuse_port)
    server = _AnnouncingServer(_config(app, log_level), ready_fd)
    if parent_pid is not None:

        def watch() -> None:
            while not server.should_exit:
                if os.getppid() != parent_pid:
                    server.should_exit = True
                time.sleep(0.5)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class ApiProcesses:
    """More processes serving the API on the listening socket of an ApiServer: each accepts
    from the same socket (the kernel hands each connection to one of them), so the API is not
    bound to one interpreter. They run `tailrace serve-api --fd N` with this process's settings
    in their environment (`env`), and stop with it."""

    def __init__(
        self,
        sock: socket.socket,
        count: int,
        *,
        env: dict[str, str],
        insecure_no_auth: bool = False,
        command: tuple[str, ...] = ("serve-api",),
        wait_ready: float | None = None,
    ) -> None:
        self.sock = sock
        self.count = count
        self.env = env
        self.insecure_no_auth = insecure_no_auth
        self.command = command
        """The tailrace command the processes run (`s3 serve` for the S3 endpoint); it takes
        --fd and --parent."""
        self.wait_ready = wait_ready
        """With seconds, `start()` returns once every process accepts (or that time is up): the
        command must take --ready-fd. Otherwise the first process takes every connection made
        while the others start, and keep-alive clients stay on it (measured: 8 clients on one
        of 3 processes answered 950 calls/s, spread over the 3, 1,700)."""
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> ApiProcesses:
        fd = self.sock.fileno()
        argv = [
            sys.executable,
            "-m",
            "tailrace",
            *self.command,
            "--fd",
            str(fd),
            "--parent",
            str(os.getpid()),
        ]
        if self.insecure_no_auth:
            argv.append("--insecure-no-auth")
        if self.wait_ready is None:
            for _ in range(self.count):
                self.procs.append(
                    subprocess.Popen(argv, env=self.env, pass_fds=(fd,), stdin=subprocess.DEVNULL)
                )
            return self
        read_end, write_end = os.pipe()
        try:
            argv += ["--ready-fd", str(write_end)]
            for _ in range(self.count):
                self.procs.append(
                    subprocess.Popen(argv, env=self.env, pass_fds=(fd, write_end), stdin=subprocess.DEVNULL)
                )
            os.close(write_end)
            write_end = -1
            ready = _wait_ready(read_end, self.count, self.wait_ready)
        finally:
            if write_end >= 0:
                os.close(write_end)
            os.close(read_end)
        if ready < self.count:
            log.warning(
                "%d of %d more API processes accept connections after %.0f s; going on without waiting",
                ready,
                self.count,
                self.wait_ready,
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def _wait_ready(read_end: int, count: int, timeout: float) -> int:
    """How many of `count` processes wrote their byte to the pipe within `timeout` (an end of
    file comes early when every process has written or died)."""
    deadline = time.monotonic() + timeout
    ready = 0
    while ready < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read_end], [], [], left)[0]:
            break
        got = os.read(read_end, count)
        if not got:
            break
        ready += len(got)
    return ready


def start_api(
    *,
    service: Any,
    host: str,
    port: int,
    home: Path,
    storage: Any = None,
    insecure_no_auth: bool = False,
    out: TextIO | None = None,
    secret_key_file: Path | None = None,
    topics: Any = None,
    signer: Any = None,
    alarms: Any = None,
    routes: Any = (),
) -> ApiServer:
    """What `tailrace up` runs: the app over `service`, listening before this returns.

    On first start (no key in the store) a key for owner 'default' is created, printed once on
    `out` and written with the endpoint to <home>/credentials.json for the client commands; later
    starts only refresh the endpoint in that file. `insecure_no_auth` says so loudly on stderr.
    `routes` are mounted before the API's own (the console's).
    """
    from tailrace.api.app import create_app
    from tailrace.api.credentials import read_credentials_file, update_credentials_endpoint
    from tailrace.api.keys import KeyStore
    from tailrace.state.secretbox import SecretBox

    out = out or sys.stdout
    keys = KeyStore(service.store, service.clock, box=SecretBox.for_home(home, secret_key_file))
    migrated = keys.encrypt_stored()
    if migrated:
        log.warning("encrypted %d access key secret(s) stored in plain text by an earlier version", migrated)
    app = create_app(
        service=service,
        store=service.store,
        keys=keys,
        clock=service.clock,
        storage=storage,
        insecure_no_auth=insecure_no_auth,
        topics=topics,
        signer=signer,
        alarms=alarms,
        routes=routes,
    )
    server = ApiServer(app, host=host, port=port).start()
    if insecure_no_auth:
        print(
            "tailrace up: WARNING: --insecure-no-auth: the API accepts unsigned requests and every caller "
            f"controls every pipeline. Anyone who can reach {server.url} can run commands on this host.",
            file=sys.stderr,
            flush=True,
        )
        return server
    key = keys.ensure_initial_key(home, server.url)
    if key is not None:
        print(
            f"tailrace up: created the first API access key (owner '{key.owner}'); it is shown only now and "
            f"saved for local clients in {home / 'credentials.json'}:\n"
            f"    AccessKeyId      {key.access_key_id}\n"
            f"    SecretAccessKey  {key.secret_access_key}\n"
            f"To use it from any directory: tailrace --home {home.resolve()} configure --from-local",
            file=out,
            flush=True,
        )
    elif read_credentials_file(home) is not None:
        update_credentials_endpoint(home, server.url)
    return server
