"""The web console (layer 5): pages, login and sessions, and the live push of events."""
