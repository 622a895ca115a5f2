"""Running the app: uvicorn on a socket we bind ourselves (so port 0 works and the address is
known before the first request), in a background thread or in the foreground."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import uvicorn

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def serve(app: Any, *, host: str, port: int, log_level: str = "info") -> None:
    """Serve in the foreground until interrupted (Ctrl-C / SIGTERM)."""
    sock = bind(host, port)
    try:
        uvicorn.Server(_config(app, log_level)).run(sockets=[sock])
    finally:
        sock.close()


def start_api(
    *,
    service: Any,
    host: str,
    port: int,
    home: Path,
    storage: Any = None,
    insecure_no_auth: bool = False,
    out: TextIO | None = None,
) -> ApiServer:
    """What `tailrace up` runs: the app over `service`, listening before this returns.

    On first start (no key in the store) a key for owner 'default' is created, printed once on
    `out` and written with the endpoint to <home>/credentials.json for the client commands; later
    starts only refresh the endpoint in that file. `insecure_no_auth` says so loudly on stderr.
    """
    from tailrace.api.app import create_app
    from tailrace.api.credentials import read_credentials_file, update_credentials_endpoint
    from tailrace.api.keys import KeyStore

    out = out or sys.stdout
    keys = KeyStore(service.store, service.clock)
    app = create_app(
        service=service,
        store=service.store,
        keys=keys,
        clock=service.clock,
        storage=storage,
        insecure_no_auth=insecure_no_auth,
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
