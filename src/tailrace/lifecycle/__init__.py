"""Lifecycle rules (pure) and the runner that applies them to the embedded store."""
