"""Building and starting the S3 endpoint: `tailrace s3 serve`, and the hook for `tailrace up`."""

from __future__ import annotations

from typing import Any

from tailrace.api.s3.app import S3Api
from tailrace.api.s3.buckets import Buckets
from tailrace.api.server import ApiServer
from tailrace.errors import ConfigError
from tailrace.lifecycle.configs import LifecycleConfigs
from tailrace.storage.tiered import TieredLocalStore

DEFAULT_PORT = 8041


def create_s3_app(
    *,
    storage: Any,
    sql_engine: Any,
    state: Any,
    clock: Any,
    domain: str = "localhost",
    secret_key_file: Any = None,
) -> S3Api:
    """The ASGI app over the embedded store, keys from the state store (their secrets decrypted
    with the server's key file), buckets owned as pipelines own them (storage.buckets)."""
    from tailrace.api.keys import KeyStore
    from tailrace.state.secretbox import SecretBox

    store = storage.s3
    if not isinstance(store, TieredLocalStore):
        raise ConfigError(
            "the S3 API fronts the embedded object store; with TAILRACE_S3_ENDPOINT_URL set, "
            "point S3 clients at that endpoint instead"
        )
    keys = KeyStore(state, clock, box=SecretBox.for_home(storage.home, secret_key_file))

    def owner_for(access_key_id: str) -> str | None:
        key = keys.lookup(access_key_id)
        return key.owner if key is not None else None

    return S3Api(
        store=store,
        buckets=Buckets(sql_engine, registry=storage.buckets),
        lifecycle=LifecycleConfigs(sql_engine),
        secret_for=keys.secret_for,
        owner_for=owner_for,
        now=clock.now,
        domain=domain,
    )


def start_s3_api(services: Any, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> ApiServer:
    """The slot for `tailrace up` (`--s3-port`): serve S3 in a background thread; returns once
    listening (`.url`, `.stop()`)."""
    from tailrace.clock import SystemClock

    app = create_s3_app(
        storage=services.storage,
        sql_engine=services.sql_engine,
        state=services.state,
        clock=SystemClock(),
        secret_key_file=services.settings.secret_key_file,
    )
    return ApiServer(app, host=host, port=port).start()
