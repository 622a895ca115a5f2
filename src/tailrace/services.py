"""The composition root: the one place that reads Settings and builds concrete backends.

Everything else receives what it needs as arguments. Members are built lazily, so a command
pays only for what it uses.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only annotations: the backends are imported where they are built, so that importing this
    # module (as `python -m tailrace` does) stays cheap.
    from tailrace.config import Settings
    from tailrace.engines.registry import EngineRegistry
    from tailrace.storage import Storage


class Services:
    def __init__(self, settings: Settings) -> None:
        from tailrace.storage.private import restrict_umask

        self.settings = settings
        self._closers: list[Any] = []
        self._home_secured = False
        restrict_umask()  # everything this process writes under the home is the service user's only

    def _secure_home(self) -> None:
        if not self._home_secured:
            from tailrace.storage.private import secure_home

            secure_home(self.settings.home)
            self._home_secured = True

    @functools.cached_property
    def storage(self) -> Storage:
        from tailrace.storage import Storage

        s = self.settings
        self._secure_home()
        s3 = None
        if s.s3_endpoint_url:
            from tailrace.storage.s3 import S3Store

            s3 = S3Store(
                endpoint_url=s.s3_endpoint_url,
                region=s.s3_region,
                access_key_id=s.aws_access_key_id,
                secret_access_key=s.aws_secret_access_key,
            )
        from tailrace.storage.buckets import LazyBucketRegistry, SqlBucketRegistry

        return Storage(
            home=s.home,
            s3=s3,
            buckets=LazyBucketRegistry(lambda: SqlBucketRegistry(self.sql_engine)),
            allowed_local_dirs=s.allowed_local_dirs,
        )

    @functools.cached_property
    def sql_engine(self) -> Any:
        """The SQLAlchemy engine of the metadata database (shared by every store on it)."""
        from tailrace.state.engine import create_engine

        self._secure_home()
        engine = create_engine(self.settings.effective_database_url)
        self._closers.append(engine.dispose)
        return engine

    @functools.cached_property
    def metastore(self) -> Any:
        """Hive table definitions (`hive_tables`, `hive_partitions` in the metadata database)."""
        from tailrace.engines.metastore import SqlMetastore

        return SqlMetastore(self.sql_engine)

    @functools.cached_property
    def engines(self) -> EngineRegistry:
        """Script engines by name on this storage and metastore; the configured `hive_engine`
        is checked here, so a misspelt name stops a process at start, not at its first attempt."""
        from tailrace.engines.abc import EngineSetup
        from tailrace.engines.metastore import OwnerMetastore
        from tailrace.engines.registry import EngineRegistry

        # An attempt of an owner gets that owner's Hive databases (tailrace run and tailrace hive,
        # with no owner, the plain namespace, which is also the `default` owner's).
        metastore = self.metastore

        def metastore_for(owner: str | None) -> Any:
            return OwnerMetastore(metastore, owner) if owner else metastore

        registry = EngineRegistry(
            EngineSetup(
                storage=self.storage,
                metastore_for=metastore_for,
                settings={"spark": self.settings.spark},
                duckdb=self.duckdb_resources,
            )
        )
        registry.get(self.settings.hive_engine)
        return registry

    @functools.cached_property
    def database_access(self) -> Any:
        """What definitions' SQL databases and DynamoDB tables may reach ([databases] settings)."""
        from tailrace.runtime.dbaccess import DatabaseAccess

        s = self.settings
        return DatabaseAccess(
            settings=s.databases,
            metadata_url=s.effective_database_url,
            dynamodb_endpoint_url=s.dynamodb_endpoint_url,
            region=s.s3_region,
            aws_access_key_id=s.aws_access_key_id,
            aws_secret_access_key=s.aws_secret_access_key,
        )

    @functools.cached_property
    def duckdb_resources(self) -> Any:
        """This host's DuckDB budget ([duckdb]): every run takes a slot of it."""
        from tailrace.engines.hive.resources import DuckDBResources

        return DuckDBResources(self.settings.duckdb, home=self.settings.home, workers=self.settings.workers)

    def hive_engine(
        self, *, work_dir: Path | None = None, threads: int | None = None, owner: str | None = None
    ) -> Any:
        """A new HiveEngine on this storage and metastore (the caller closes it); with `owner`,
        on that owner's view of the store and its own metastore namespace. It holds a slot of
        the host's DuckDB budget until closed (waiting for one when all are taken)."""
        import uuid

        from tailrace.engines.hive import HiveEngine

        if work_dir is None:
            work_dir = self.settings.home / "tmp" / f"hive-{uuid.uuid4().hex[:12]}"
        grant = self.duckdb_resources.acquire(owner or "", threads=threads)
        try:
            if owner is None:
                return HiveEngine(
                    self.storage, self.metastore, work_dir=work_dir, threads=threads, grant=grant
                )
            from tailrace.engines.metastore import OwnerMetastore

            return HiveEngine(
                self.storage.for_owner(owner),
                OwnerMetastore(self.metastore, owner),
                work_dir=work_dir,
                threads=threads,
                grant=grant,
            )
        except BaseException:
            grant.release()
            raise

    @functools.cached_property
    def state(self) -> Any:
        """The state store (pipelines, definitions, instances, attempts, events) in the metadata database."""
        from tailrace.state import SqlStateStore

        store = SqlStateStore(self.sql_engine)
        self._closers.append(store.close)
        return store

    @functools.cached_property
    def event_bus(self) -> Any:
        """The event bus: a Redis stream when redis_url is set (every process sees every event),
        else the in-process bus."""
        s = self.settings
        bus: Any
        if s.redis_url:
            from tailrace.events.redis import RedisEventBus

            bus = RedisEventBus(s.redis_url, stream=s.redis_stream, maxlen=s.redis_maxlen)
        else:
            from tailrace.events.memory import MemoryEventBus

            bus = MemoryEventBus()
        self._closers.append(bus.close)
        return bus

    def pipeline_service(self, config: Any = None) -> Any:
        """The pipeline service (lifecycle, scheduling rules, task API) over the state store;
        config is a tailrace.runtime.transitions.RuntimeConfig (defaults when None)."""
        from tailrace.runtime.service import PipelineService

        service = PipelineService(
            store=self.state,
            home=self.settings.home.resolve(),
            config=config,
            storage=self.storage,
            limits=self.settings.limits,
        )
        service.transitions.topic_check = self._topic_check
        return service

    def _topic_check(self, owner: str, arn: str) -> str | None:
        """SnsAlarm topicArn checks (the topics are only opened when a definition has one)."""
        from tailrace.notify.pipelinealarms import topic_check

        result: str | None = topic_check(self.topics)(owner, arn)
        return result

    def console_app(self, *, insecure_no_auth: bool) -> Any:
        """The API with the console mounted, as `tailrace console` and `tailrace serve-api` serve it."""
        from tailrace.api.app import create_app
        from tailrace.api.keys import KeyStore
        from tailrace.clock import SystemClock
        from tailrace.state.secretbox import SecretBox

        service = self.pipeline_service()
        keys = KeyStore(
            self.state,
            SystemClock(),
            box=SecretBox.for_home(self.settings.home.resolve(), self.settings.secret_key_file),
        )
        return create_app(
            service=service,
            store=self.state,
            keys=None if insecure_no_auth else keys,
            clock=SystemClock(),
            storage=self.storage,
            insecure_no_auth=insecure_no_auth,
            routes=self.console_routes(service, insecure_no_auth=insecure_no_auth),
        )

    def console_routes(self, service: Any, *, insecure_no_auth: bool = False) -> list[Any]:
        """The web console's routes (tailrace.console) over `service`, for create_app(routes=...);
        its live stream gets the Redis bus when one is configured."""
        from tailrace.api.keys import KeyStore
        from tailrace.console.app import console_routes
        from tailrace.state.secretbox import SecretBox

        s = self.settings
        keys = KeyStore(
            service.store, service.clock, box=SecretBox.for_home(s.home.resolve(), s.secret_key_file)
        )
        return console_routes(
            service=service,
            store=service.store,
            keys=None if insecure_no_auth else keys,
            clock=service.clock,
            bus=self.event_bus if s.redis_url else None,
            insecure_no_auth=insecure_no_auth,
        )

    @functools.cached_property
    def processes(self) -> Any:
        """The process builder (tailrace.processes.Processes): the loops of up, scheduler, worker."""
        from tailrace.processes import Processes

        return Processes(self)

    # --- notification (topics, deliveries) ------------------------------------------------------

    @functools.cached_property
    def notify_signer(self) -> Any:
        """The SNS signing key pair and certificate under <home>/notify (key file 0600)."""
        from tailrace.notify.signing import Signer

        return Signer(self.settings.home.resolve() / "notify")

    @functools.cached_property
    def destinations(self) -> Any:
        """Where HTTP/S subscribers may be (settings notify_private_destinations, notify_allowed_networks)."""
        from tailrace.errors import ConfigError
        from tailrace.notify.httpsend import DestinationPolicy

        mode = self.settings.notify_private_destinations
        if mode not in ("allow", "deny", "single-owner"):
            raise ConfigError(
                f"notify_private_destinations is {mode!r}; expected allow, deny or single-owner"
            )
        allow: Any = mode == "allow"
        if mode == "single-owner":
            allow = _single_owner(self)
        return DestinationPolicy.from_text(self.settings.notify_allowed_networks, allow_private=allow)

    @functools.cached_property
    def endpoint_rules(self) -> Any:
        """Subscribe's checks for every protocol (HTTP's destinations, email, redis, store)."""
        from tailrace.notify.channels import EndpointRules

        return EndpointRules(self.destinations, storage=self.storage, smtp=self.settings.smtp)

    @functools.cached_property
    def topics(self) -> Any:
        """The SNS topics and subscriptions on the metadata database."""
        from tailrace.clock import SystemClock
        from tailrace.notify.events import store_sink
        from tailrace.notify.topics import TopicService

        topics = TopicService(
            self.sql_engine,
            SystemClock(),
            protocols=(*self.endpoint_rules.protocols, "console"),
            public_url=self.settings.effective_endpoint,
        )
        topics.check_owned_endpoint = self.endpoint_rules.check
        topics.emit = store_sink(self.state)
        return topics

    @functools.cached_property
    def alarms(self) -> Any:
        """CloudWatch metrics and metric alarms on the metadata database."""
        from tailrace.clock import SystemClock
        from tailrace.notify.alarms import AlarmService
        from tailrace.notify.events import store_sink
        from tailrace.notify.metrics import MetricStore

        clock = SystemClock()
        return AlarmService(
            self.sql_engine,
            clock,
            MetricStore(self.sql_engine, clock),
            self.topics,
            emit=store_sink(self.state),
        )

    def notify_loops(self) -> list[Any]:
        """The notification loops `tailrace up` runs (each has start/stop): deliveries, alarm
        evaluation, and the relay of pipeline SnsAlarm actions to their topics."""
        from tailrace.notify.alarms import AlarmEvaluator
        from tailrace.notify.pipelinealarms import SnsAlarmRelay
        from tailrace.notify.wakeup import Listener

        self.state  # noqa: B018  (the outbox table the relay reads exists before it starts)
        worker = self.delivery_worker()
        return [
            worker,
            Listener(self.sql_engine, worker.wake),  # Publish in other processes (PostgreSQL)
            AlarmEvaluator(self.alarms),
            SnsAlarmRelay(self.sql_engine, self.topics),
        ]

    def delivery_worker(self) -> Any:
        """A new delivery loop over the metadata database (the caller starts and stops it)."""
        from tailrace.clock import SystemClock
        from tailrace.notify.channels import senders
        from tailrace.notify.delivery import DeliveryWorker
        from tailrace.notify.events import store_sink

        worker = DeliveryWorker(
            self.sql_engine,
            SystemClock(),
            self.notify_signer,
            self.destinations,
            senders=senders(self.endpoint_rules, self.notify_signer, self.settings.smtp),
            console=store_sink(self.state),  # `console` subscriptions: the console's live feed
        )
        self.topics.on_commit.append(worker.wake)
        return worker

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # closing must not mask the command's own outcome
                pass


def _single_owner(services: Services) -> Any:
    """allow_private for "single-owner": true while every access key has the same owner (cached
    for 30 s; a second owner's key closes private destinations within that time)."""
    import time

    cache: list[float | bool] = [0.0, False]

    def allow() -> bool:
        if time.monotonic() - float(cache[0]) > 30:
            with services.state.transaction(readonly=True) as tx:
                owners = {k.owner for k in tx.keys.list()}
            cache[:] = [time.monotonic(), len(owners) <= 1]
        return bool(cache[1])

    return allow


def build_services(settings: Settings) -> Services:
    return Services(settings)
