"""The HTTP API (layer 5): AWS Data Pipeline JSON 1.1 at POST /, SigV4 against tailrace-issued
keys, the REST API for the console under /api/v1, and /openapi.json.

    app = create_app(service=service, store=store, keys=KeyStore(store, clock), clock=clock)
    server = ApiServer(app, host="127.0.0.1", port=8040).start()   # or serve(app, ...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tailrace.api.app import create_app
    from tailrace.api.keys import KeyStore
    from tailrace.api.server import ApiServer, serve

__all__ = ["ApiServer", "KeyStore", "create_app", "serve"]

_LAZY = {
    "create_app": "tailrace.api.app",
    "KeyStore": "tailrace.api.keys",
    "ApiServer": "tailrace.api.server",
    "serve": "tailrace.api.server",
}


def __getattr__(name: str) -> Any:
    # Lazy, so client commands importing tailrace.api.credentials do not load the server stack.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tailrace.api' has no attribute {name!r}")
