"""The web console: server-rendered pages over the pipeline service and the REST API's reads.

`console_routes(...)` gives the routes `tailrace up` (and `tailrace console`) mount at
/console; the live push stream (tailrace.console.live) is mounted by it when installed.
"""
