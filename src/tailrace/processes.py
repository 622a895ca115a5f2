"""Process assembly: what `tailrace up`, `tailrace scheduler` and `tailrace worker` run.

A process is an ordered list of loops. Each loop is a small object with start() and stop();
loops start in order (the API listens before the scheduler hands out work) and stop in reverse
(task runners give their attempts back before the API goes away). This module sits at the root,
so a loop may come from any layer: the runtime's scheduler and task runners, the API server, and
the loops other parts add (the outbox relay, the notifier, the lifecycle runner, the console):
write a Loop (or wrap a `run(stop_event)` function in ThreadLoop) and add it to the list of the
process that should run it, in `Processes` below.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tailrace.services import Services

log = logging.getLogger("tailrace.processes")


class Loop(ABC):
    """A long-running part of a process.

    start() returns once the loop runs (a server listens); it may raise, and then the loops
    started before it are stopped. stop(timeout) asks the loop to end and waits for it at most
    `timeout` seconds (None: as long as it takes); it is called once, after a successful start.
    """

    name: str = "loop"
    banner_last: bool = False
    """Print this loop's banner line after the others' (the API's address closes the banner)."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self, timeout: float | None = None) -> None: ...

    @property
    def ended(self) -> bool:
        """True when the loop ended by itself (the service told a task runner to terminate):
        the process then stops as on a signal."""
        return False

    @property
    def busy(self) -> list[str]:
        """What is still in flight (attempt ids), for the stopping message."""
        return []

    def describe(self) -> str | None:
        """One line for the start-up banner, or None."""
        return None


class ThreadLoop(Loop):
    """A loop from a function `run(stop: threading.Event)` run on its own thread."""

    def __init__(
        self, name: str, run: Callable[[threading.Event], None], *, banner: str | None = None
    ) -> None:
        self.name = name
        self._run = run
        self._banner = banner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def start(self) -> None:
        def body() -> None:
            try:
                self._run(self._stop)
            except Exception:  # a loop's crash ends this loop, logged, and stops the process
                log.exception("%s ended with an error", self.name)
            finally:
                self._done.set()

        self._thread = threading.Thread(target=body, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def ended(self) -> bool:
        return self._done.is_set() and not self._stop.is_set()

    def describe(self) -> str | None:
        return self._banner


class RuntimeLoop(Loop):
    """The runtime's ServiceProcess (scheduler and/or task runners) as a loop."""

    def __init__(self, name: str, process: Any, banner: str | None = None) -> None:
        self.name = name
        self.process = process
        self._banner = banner

    def start(self) -> None:
        self.process.start()

    def stop(self, timeout: float | None = None) -> None:
        self.process.stop(timeout)

    @property
    def ended(self) -> bool:
        return bool(self.process.stop_event.is_set())

    @property
    def busy(self) -> list[str]:
        return list(self.process.running)

    def describe(self) -> str | None:
        return self._banner


class ApiLoop(Loop):
    """The HTTP API (AWS JSON 1.1, REST, OpenAPI); listens when start() returns."""

    name = "api"
    banner_last = True

    def __init__(self, start: Callable[[], Any], banner: Callable[[Any], str]) -> None:
        self._start = start
        self._banner = banner
        self.server: Any = None

    def start(self) -> None:
        self.server = self._start()

    def stop(self, timeout: float | None = None) -> None:
        if self.server is not None:
            self.server.stop(timeout if timeout is not None else 10.0)

    def describe(self) -> str | None:
        return self._banner(self.server) if self.server is not None else None


class RelayLoop(Loop):
    """The events outbox relay (tailrace.events.relay) as a loop."""

    name = "event relay"

    def __init__(self, services: Services, banner: str) -> None:
        self.services = services
        self._banner = banner
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        from tailrace.events.relay import start_relay

        self._stop = start_relay(self.services)

    def stop(self, timeout: float | None = None) -> None:
        if self._stop is not None:
            self._stop()

    def describe(self) -> str | None:
        return self._banner


def child_env(settings: Any) -> dict[str, str]:
    """The environment of a process that serves beside this one: the same home, metadata
    database and secret key file."""
    env = {**os.environ, "TAILRACE_HOME": str(settings.home.resolve())}
    env["TAILRACE_DATABASE_URL"] = settings.effective_database_url
    if settings.secret_key_file is not None:
        env["TAILRACE_SECRET_KEY_FILE"] = str(settings.secret_key_file.resolve())
    return env


READY_TIMEOUT = 60.0
"""Seconds `tailrace up` waits for its extra API processes to accept before it goes on."""


class ApiProcessesLoop(Loop):
    """`api_processes - 1` more processes serving the API on the ApiLoop's listening socket
    (PostgreSQL: SQLite keeps one writer process)."""

    name = "api processes"

    def __init__(self, api: ApiLoop, services: Services, insecure_no_auth: bool) -> None:
        self.api = api
        self.services = services
        self.insecure_no_auth = insecure_no_auth
        self.extra = services.settings.api_processes - 1
        self.processes: Any = None

    def start(self) -> None:
        if self.api.server is None or self.extra < 1:
            return
        from tailrace.api.server import ApiProcesses

        env = child_env(self.services.settings)
        # Waits until they accept, so that the banner comes when connections spread over all.
        self.processes = ApiProcesses(
            self.api.server.sock,
            self.extra,
            env=env,
            insecure_no_auth=self.insecure_no_auth,
            wait_ready=READY_TIMEOUT,
        ).start()

    def stop(self, timeout: float | None = None) -> None:
        if self.processes is not None:
            self.processes.stop()

    def describe(self) -> str | None:
        return f"{self.extra} more API process(es) on the same port" if self.processes is not None else None


class S3Loop(Loop):
    """The S3 REST API of the embedded store on a port of its own (tailrace.api.s3)."""

    name = "s3 api"

    def __init__(self, services: Services, host: str, port: int) -> None:
        self.services, self.host, self.port = services, host, port
        self.server: Any = None
        self.processes: Any = None

    def start(self) -> None:
        from tailrace.api.s3.serve import start_s3_api
        from tailrace.errors import ConfigError

        try:
            self.server = start_s3_api(self.services, host=self.host, port=self.port)
        except ConfigError as exc:
            raise ConfigError(f"S3 API: {exc}; choose another port with --s3-port P, or --s3-port off")
        extra = self.services.settings.s3_processes - 1
        if extra > 0:  # `tailrace s3 serve` processes accepting on the same socket
            from tailrace.api.server import ApiProcesses

            env = child_env(self.services.settings)
            self.processes = ApiProcesses(self.server.sock, extra, env=env, command=("s3", "serve")).start()

    def stop(self, timeout: float | None = None) -> None:
        if self.processes is not None:
            self.processes.stop()
        if self.server is not None:
            self.server.stop()

    def describe(self) -> str | None:
        if self.server is None:
            return None
        more = f" ({self.processes.count + 1} processes)" if self.processes is not None else ""
        return f"S3 API of the embedded store on {self.server.url}{more}"


class LifecycleLoop(Loop):
    """The daily lifecycle run of the embedded store (tailrace.lifecycle.daily)."""

    name = "lifecycle"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.daily: Any = None

    def start(self) -> None:
        from tailrace.lifecycle.configs import LifecycleConfigs
        from tailrace.lifecycle.daily import DailyLifecycle
        from tailrace.storage.tiered import TieredLocalStore

        store = self.services.storage.s3
        if not isinstance(store, TieredLocalStore):
            return  # a real S3 endpoint applies the buckets' rules itself
        self.daily = DailyLifecycle(
            state=self.services.state, store=store, configs=LifecycleConfigs(self.services.sql_engine)
        ).start()

    def stop(self, timeout: float | None = None) -> None:
        if self.daily is not None:
            self.daily.stop(timeout if timeout is not None else 10.0)

    def describe(self) -> str | None:
        return "lifecycle rules of the embedded store applied once a day" if self.daily is not None else None


class NotifyLoop(Loop):
    """The notification loops (deliveries, alarm evaluation, the SnsAlarm relay) as one loop."""

    name = "notifications"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.loops: list[Any] = []

    def start(self) -> None:
        for loop in self.services.notify_loops():
            loop.start()
            self.loops.append(loop)

    def stop(self, timeout: float | None = None) -> None:
        while self.loops:
            self.loops.pop().stop()


@dataclass
class Assembly:
    """The loops of one process, started in order and stopped in reverse."""

    name: str
    loops: list[Loop]
    grace: float = 10.0
    """How long running attempts may go on after a stop request before they are given back."""
    started: list[Loop] = field(default_factory=list)

    def start(self) -> None:
        for loop in self.loops:
            try:
                loop.start()
            except BaseException:
                self.stop()
                raise
            self.started.append(loop)

    def stop(self) -> None:
        """Stop the started loops in reverse order, all within grace plus a margin."""
        deadline = time.monotonic() + self.grace + 5.0
        while self.started:
            loop = self.started.pop()
            try:
                loop.stop(max(deadline - time.monotonic(), 0.1))
            except Exception:  # one loop failing to stop must not keep the others running
                log.exception("%s: stopping %s failed", self.name, loop.name)

    @property
    def ended(self) -> bool:
        return any(loop.ended for loop in self.started)

    @property
    def busy(self) -> list[str]:
        return [item for loop in self.started for item in loop.busy]

    def banner(self) -> list[str]:
        ordered = sorted(self.started, key=lambda loop: loop.banner_last)
        return [line for loop in ordered if (line := loop.describe())]

    def serve(self, stop: threading.Event, *, say: Callable[[str], None]) -> int:
        """Wait for `stop` (SIGINT/SIGTERM) or a loop ending by itself, then stop in reverse."""
        while not stop.wait(0.5) and not self.ended:
            pass
        running = self.busy
        note = f"; giving {len(running)} running attempt(s) up to {self.grace:.0f} s" if running else ""
        say(f"{self.name}: stopping{note} (Ctrl-C again to stop at once)")
        self.stop()
        say(f"{self.name}: stopped")
        return 0


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """What the process commands' flags and [execution] decide."""

    lease: float = 120.0
    poll: float = 1.0
    grace: float = 10.0


class Processes:
    """Builds the loops of each process command from the composition root's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @staticmethod
    def options(*, lease: float, poll: float, grace: float) -> RuntimeOptions:
        """RuntimeOptions for callers below this layer (the CLI cannot import this module)."""
        return RuntimeOptions(lease=lease, poll=poll, grace=grace)

    def _service(self, options: RuntimeOptions) -> Any:
        from tailrace.runtime.transitions import RuntimeConfig

        return self.services.pipeline_service(RuntimeConfig(lease=timedelta(seconds=options.lease)))

    def _runtime(
        self, service: Any, options: RuntimeOptions, loop_name: str, banner: str | None, **config: Any
    ) -> Loop:
        from tailrace.runtime.runners import RunnerConfig, ServiceProcess
        from tailrace.runtime.worker import Isolation

        process = ServiceProcess(
            service=service,
            storage=self.services.storage,
            home=self.services.settings.home.resolve(),
            config=RunnerConfig(poll_interval=options.poll, grace=options.grace, **config),
            engines=self.services.engines,
            hive_engine=self.services.settings.hive_engine,
            databases=self.services.database_access,
            # Owners kept apart: each attempt gets its owner's store view, metastore and OS user.
            isolation=Isolation(execution=self.services.settings.execution),
        )
        return RuntimeLoop(loop_name, process, banner)

    def up(
        self,
        options: RuntimeOptions,
        *,
        host: str,
        port: int,
        workers: int,
        worker_groups: Sequence[str] = (),
        resources: bool = True,
        http: bool = True,
        s3_port: int | None = None,
        insecure_no_auth: bool = False,
        began: float | None = None,
    ) -> Assembly:
        """`tailrace up`: the API, the scheduler, embedded task runners (and resource pools)."""
        service = self._service(options)
        began = time.monotonic() if began is None else began
        groups = ", ".join(worker_groups) or "every worker group"
        loops: list[Loop] = [*self._relay()]
        if http:
            api = self._api(service, host, port, insecure_no_auth, began)
            loops += [api, ApiProcessesLoop(api, self.services, insecure_no_auth)]
        if s3_port is not None and not self.services.settings.s3_endpoint_url:
            loops.append(S3Loop(self.services, host, s3_port))  # with a real S3, clients go there
        loops.append(self._runtime(service, options, "scheduler", None, **_SCHEDULER_ONLY, name="up"))
        loops.append(
            self._runtime(
                service,
                options,
                "task runners",
                f"scheduler and {workers} task runner(s) for {groups}"
                + ("" if not resources else ", local pools for runsOn resources"),
                scheduler=False,
                workers=workers,
                worker_groups=tuple(worker_groups) or ("*",),
                service_tasks=True,
                resources=resources,
                name="up",
            )
        )
        loops.append(self._failure_log())
        loops.append(NotifyLoop(self.services))
        if not self.services.settings.s3_endpoint_url:  # a real S3 applies its own rules
            loops.append(LifecycleLoop(self.services))
        # Slot: the console push loop is appended here.
        return Assembly("tailrace up", loops, grace=options.grace)

    def scheduler(self, options: RuntimeOptions, *, service_threads: int) -> Assembly:
        """`tailrace scheduler`: the scheduler and a small pool for the service's own checks."""
        service = self._service(options)
        loops = [
            *self._relay(),
            self._runtime(service, options, "scheduler", None, **_SCHEDULER_ONLY, name="scheduler"),
            self._runtime(
                service,
                options,
                "service checks",
                None,
                scheduler=False,
                workers=service_threads,
                worker_groups=(),
                service_tasks=True,
                resources=False,
                name="scheduler",
            ),
        ]
        return Assembly("tailrace scheduler", loops, grace=options.grace)

    def worker(
        self,
        options: RuntimeOptions,
        *,
        worker_groups: Sequence[str],
        threads: int,
        resources: bool,
        pool_size: int,
        name: str,
    ) -> Assembly:
        """`tailrace worker`: task runners for worker groups (and resource pools) on this host."""
        service = self._service(options)
        loop = self._runtime(
            service,
            options,
            "task runners",
            None,
            scheduler=False,
            workers=threads if worker_groups else 0,
            worker_groups=tuple(worker_groups),
            service_tasks=False,
            resources=resources,
            pool_size=pool_size,
            name=name,
        )
        return Assembly("tailrace worker", [loop], grace=options.grace)

    def _failure_log(self) -> Loop:
        """One log line per failed attempt, from the outbox (tailrace.runtime.servicelog)."""
        from tailrace.runtime.servicelog import FailureLog

        return ThreadLoop("failure log", FailureLog(self.services.state).run)

    def _relay(self) -> list[Loop]:
        """With a Redis bus, the outbox relay: first to start, last to stop, so that what the
        other loops commit reaches the bus."""
        settings = self.services.settings
        if not settings.redis_url:
            return []
        from tailrace.config import redact_url

        return [
            RelayLoop(
                self.services,
                banner=f"events relayed to {redact_url(settings.redis_url)} stream {settings.redis_stream}",
            )
        ]

    def _api(self, service: Any, host: str, port: int, insecure_no_auth: bool, began: float) -> ApiLoop:
        def start() -> Any:
            from tailrace.api.server import start_api

            server = start_api(
                service=service,
                host=host,
                port=port,
                home=self.services.settings.home.resolve(),
                storage=self.services.storage,
                insecure_no_auth=insecure_no_auth,
                secret_key_file=self.services.settings.secret_key_file,
                topics=self.services.topics,
                signer=self.services.notify_signer,
                alarms=self.services.alarms,
                routes=self.services.console_routes(service, insecure_no_auth=insecure_no_auth),
            )
            if not self.services.settings.endpoint:
                # Links in SNS messages (SubscribeURL, SigningCertURL) point at where we listen.
                self.services.topics.public_url = server.url
            return server

        def banner(server: Any) -> str:
            return (
                f"listening on http://{host}:{server.port} (console at /console; "
                f"ready in {time.monotonic() - began:.2f} s)"
            )

        return ApiLoop(start, banner)


_SCHEDULER_ONLY: dict[str, Any] = {
    "scheduler": True,
    "workers": 0,
    "worker_groups": (),
    "service_tasks": False,
    "resources": False,
}
