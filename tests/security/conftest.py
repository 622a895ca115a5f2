"""The attack suite's fixtures (defined in security_helpers, imported by name like tests/api does)."""

from security_helpers import server

__all__ = ["server"]
