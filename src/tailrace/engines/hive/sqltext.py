"""The top-level clauses of a translated (DuckDB) query, found by its tokens.

The engine edits translated SQL as text, never regenerated from a parse (which could change its
meaning); these are the spans it edits or compares: the FROM item, the WHERE condition and the
ORDER BY of the outermost query.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot.tokens import Token, TokenType

# Tokens that end a top-level WHERE condition.
_AFTER_WHERE = {
    TokenType.GROUP_BY,
    TokenType.HAVING,
    TokenType.QUALIFY,
    TokenType.WINDOW,
    TokenType.ORDER_BY,
    TokenType.LIMIT,
    TokenType.OFFSET,
    TokenType.FETCH,
    TokenType.UNION,
    TokenType.EXCEPT,
    TokenType.INTERSECT,
    TokenType.SEMICOLON,
}
_LIMITS = {TokenType.LIMIT, TokenType.OFFSET, TokenType.FETCH}


@dataclass(frozen=True)
class Clauses:
    from_item: str | None = None
    """The text of the first top-level FROM item when it is a parenthesised subquery."""
    where: str | None = None
    """The text of the first top-level WHERE condition."""
    order_by: tuple[int, int] | None = None
    """The span of the top-level `ORDER BY ...` (up to a LIMIT, OFFSET or the end)."""
    limited: bool = False
    """A top-level LIMIT, OFFSET or FETCH."""
    alone: bool = False
    """The FROM item is followed only by its alias: no join, no second item."""


def top_clauses(sql: str) -> Clauses:
    """The clauses of `sql`'s outermost query (empty when it does not tokenize)."""
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
    except sqlglot.errors.TokenError:
        return Clauses()
    depth = 0
    top: list[tuple[int, Token]] = []  # (index, token) of the depth-0 tokens
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0:
            top.append((i, tok))
    from_item = where = None
    order_by = None
    limited = seen_from = alone = False
    for n, (i, tok) in enumerate(top):
        kind = tok.token_type
        if kind == TokenType.FROM and not seen_from:
            seen_from = True
            from_item = _parenthesised(sql, tokens, i + 1)
            if from_item is not None:
                alone = _alias_only([t for _, t in top[n + 1 :]])
        elif kind == TokenType.WHERE and where is None:
            end = next((t for _, t in top[n + 1 :] if t.token_type in _AFTER_WHERE), None)
            start = tokens[i + 1].start if i + 1 < len(tokens) else len(sql)
            where = sql[start : end.start if end else len(sql)].strip()
        elif kind == TokenType.ORDER_BY:
            end = next((t for _, t in top[n + 1 :] if t.token_type in _LIMITS), None)
            order_by = (tok.start, end.start if end else len(sql))
        elif kind in _LIMITS:
            limited = True
    return Clauses(from_item, where or None, order_by, limited, alone)


def unordered(sql: str) -> str | None:
    """`sql` without its top-level ORDER BY (the same rows, for an aggregate over them that
    DuckDB would otherwise sort first); None when a LIMIT makes the order choose the rows."""
    clauses = top_clauses(sql)
    if clauses.limited:
        return None
    if clauses.order_by is None:
        return sql
    start, end = clauses.order_by
    return sql[:start] + sql[end:]


def _alias_only(after: list[Token]) -> bool:
    """Whether the top-level tokens after a FROM item are `[AS] alias` and then a clause."""
    rest = after[1:] if after and after[0].token_type == TokenType.ALIAS else after
    if rest and rest[0].token_type in (TokenType.VAR, TokenType.IDENTIFIER):
        rest = rest[1:]
    return not rest or rest[0].token_type in _AFTER_WHERE or rest[0].token_type == TokenType.WHERE


def _parenthesised(sql: str, tokens: list[Token], i: int) -> str | None:
    if i >= len(tokens) or tokens[i].token_type != TokenType.L_PAREN:
        return None
    depth = 0
    for end in tokens[i:]:
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(end.token_type, 0)
        if depth == 0:
            return sql[tokens[i].start : end.end + 1]
    return None
