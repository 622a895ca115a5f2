"""The console's live feed: events pushed to every open page (SSE), alarms, sirens, broadcasts."""

from tailrace.console.live.hub import LiveHub
from tailrace.console.live.routes import Authorize, live_routes
from tailrace.console.live.wire import ViewerLike

__all__ = ["Authorize", "LiveHub", "ViewerLike", "live_routes"]
