"""The error the translation modules raise (the engine turns it into a located HiveError)."""

from __future__ import annotations

from sqlglot import exp


class TranslateError(Exception):
    """A problem at a node of the statement."""

    def __init__(self, message: str, node: exp.Expr | None = None) -> None:
        super().__init__(message)
        self.node = node
