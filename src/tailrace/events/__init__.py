"""Typed events and the event bus (layer 3): model, port, in-process and Redis backends, relay."""
