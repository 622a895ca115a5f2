"""The one error the expression language raises: a message, a column and (later) an object and field."""

from __future__ import annotations

from tailrace.errors import LocatedError, Location


class ExpressionError(LocatedError):
    """Bad syntax or a failed evaluation inside `#{...}`.

    `column` is 1-based within the text it was parsed from: the whole field for templates
    (`parse_template`, `render`), the bare expression for `evaluate`. `text` is that text, for a
    caret display. `.at(object_id, field)` returns a copy whose location names the object and field.
    """

    def __init__(
        self,
        message: str,
        *,
        column: int | None = None,
        text: str | None = None,
        object_id: str | None = None,
        field: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.column = column
        self.text = text
        self.object_id = object_id
        self.field = field
        # The name a "did you mean" hint proposes (also part of the message).
        self.suggestion = suggestion
        super().__init__(message, Location(object_id=object_id, field=field, column=column))

    def at(self, object_id: str | None, field: str | None) -> ExpressionError:
        """A copy located in `object_id`'s `field` (None keeps what is already known)."""
        copy = ExpressionError(
            self.detail,
            column=self.column,
            text=self.text,
            object_id=object_id if object_id is not None else self.object_id,
            field=field if field is not None else self.field,
            suggestion=self.suggestion,
        )
        copy.__cause__ = self.__cause__
        return copy

    def caret(self, indent: str = "  ") -> str:
        """The line of `text` holding the column, and a `^` under the column ('' when unknown)."""
        if self.text is None or self.column is None:
            return ""
        offset = min(max(self.column - 1, 0), len(self.text))
        start = self.text.rfind("\n", 0, offset) + 1
        end = self.text.find("\n", offset)
        line = self.text[start : end if end >= 0 else len(self.text)]
        pad = "".join("\t" if ch == "\t" else " " for ch in line[: offset - start])
        return f"{indent}{line}\n{indent}{pad}^"
