"""The web console (layer 5): server-rendered pages over the pipeline service and the REST API's
reads, login and sessions, and the live push of events (tailrace.console.live).

`console_routes(...)` gives the routes `tailrace up` (and `tailrace console`) mount at /console.
"""
