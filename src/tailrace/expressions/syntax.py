"""Field text to syntax trees: the `#{...}` scanner, the tokenizer and the parser.

Grammar (loosest first; `^` is right-associative and binds tighter than a leading minus):

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := postfix ('^' unary)?
    postfix := primary ('.' member)*            member := NAME ['(' args ')']   (method-call style)
    primary := NUMBER | STRING | NAME ['(' args ')'] | '*'NAME | '(' expr ')'

NAME is `[@]ident` (`@scheduledStartTime`); `*myPassword` (a `*` right before a name where an
operand is expected) is a masked parameter. Strings use '...' or "..."; a doubled quote inside
is one quote (`'YYYY''T''HH'`), and there are no backslash escapes. Positions are 0-based
offsets into the whole field text; errors report them 1-based as columns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from tailrace.expressions.error import ExpressionError

# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Literal:
    value: int | float | str
    pos: int


@dataclass(frozen=True, slots=True)
class Path:
    """A name read from the scope, then fields through references: `input.directoryPath`."""

    segments: tuple[tuple[str, int], ...]

    @property
    def pos(self) -> int:
        return self.segments[0][1]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.segments)


@dataclass(frozen=True, slots=True)
class Member:
    """A field of a computed value: `(expr).name` or `f(x).name`."""

    target: Node
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """`name(args)`, or `receiver.name(args)` (then `args[0]` is the receiver and `method` is set)."""

    name: str
    args: tuple[Node, ...]
    pos: int
    method: bool = False


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


Node = Literal | Path | Member | Call | Unary | Binary


def walk_nodes(node: Node) -> list[Node]:
    """The node and everything under it, parents first, arguments left to right."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        if isinstance(n, Member):
            stack.append(n.target)
        elif isinstance(n, Call):
            stack.extend(reversed(n.args))
        elif isinstance(n, Unary):
            stack.append(n.operand)
        elif isinstance(n, Binary):
            stack.extend((n.right, n.left))
    return out


@dataclass(frozen=True, slots=True)
class Expr:
    """One expression: its text (without `#{ }`), its 1-based column in the field, its tree."""

    text: str
    column: int
    node: Node

    def paths(self) -> list[tuple[str, ...]]:
        """Every name path the expression reads, in order, once each."""
        seen: dict[tuple[str, ...], None] = {}
        for n in walk_nodes(self.node):
            if isinstance(n, Path):
                seen.setdefault(n.names, None)
        return list(seen)

    def functions(self) -> list[tuple[str, int]]:
        """(name, 1-based column) of every function call, either call style."""
        return [(n.name, n.pos + 1) for n in walk_nodes(self.node) if isinstance(n, Call)]


@dataclass(frozen=True, slots=True)
class Template:
    """A field's text split into literal parts and expressions."""

    text: str
    parts: tuple[str | Expr, ...]

    @property
    def expressions(self) -> list[Expr]:
        return [p for p in self.parts if isinstance(p, Expr)]

    @property
    def is_constant(self) -> bool:
        return not any(isinstance(p, Expr) for p in self.parts)


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # NUMBER STRING NAME OP EOF
    value: str | int | float
    pos: int
    end: int

    def describe(self) -> str:
        if self.kind == "EOF":
            return "the end of the expression"
        if self.kind == "NAME":
            return f"name '{self.value}'"
        if self.kind == "STRING":
            return f"string {self.value!r}"
        if self.kind == "NUMBER":
            return f"number {self.value}"
        return f"'{self.value}'"


_OPS = "+-*/^(),."
_MAX_INT_DIGITS = 19


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _is_ident_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_")


def _is_ident_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Tokens of `text[start:end]`; positions are offsets into the whole `text` (for columns)."""
    end = len(text) if end is None else end
    tokens: list[Token] = []
    i = start

    def fail(message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, column=pos + 1, text=text)

    while i < end:
        c = text[i]
        if c.isspace():
            i += 1
        elif _is_digit(c) or (
            c == "." and i + 1 < end and _is_digit(text[i + 1]) and not _ends_operand(tokens)
        ):
            i = _number(text, i, end, tokens, fail)
        elif c in "'\"":
            parts: list[str] = []
            j = i + 1
            while True:
                k = text.find(c, j, end)
                if k < 0:
                    raise fail(f"unterminated string: the {c} at column {i + 1} is never closed", i)
                parts.append(text[j:k])
                if k + 1 < end and text[k + 1] == c:  # doubled quote: one quote character
                    parts.append(c)
                    j = k + 2
                    continue
                break
            tokens.append(Token("STRING", "".join(parts), i, k + 1))
            i = k + 1
        elif c == "@" or _is_ident_start(c):
            j = i + 1
            if c == "@" and not (j < end and _is_ident_start(text[j])):
                raise fail("expected a name after '@' (like @scheduledStartTime)", i)
            while j < end and _is_ident_char(text[j]):
                j += 1
            tokens.append(Token("NAME", text[i:j], i, j))
            i = j
        elif c in _OPS:
            tokens.append(Token("OP", c, i, i + 1))
            i += 1
        else:
            hint = ""
            if c == "#":
                hint = " (expressions cannot nest '#{'; write the inner expression directly)"
            elif c in "{}[]":
                hint = " (brackets and braces are not part of the expression language)"
            raise fail(f"unexpected character {c!r}{hint}", i)
    tokens.append(Token("EOF", "", end, end))
    return tokens


def _ends_operand(tokens: list[Token]) -> bool:
    if not tokens:
        return False
    last = tokens[-1]
    return last.kind in ("NAME", "NUMBER", "STRING") or last.value == ")"


def _number(
    text: str, i: int, end: int, tokens: list[Token], fail: Callable[[str, int], ExpressionError]
) -> int:
    j = i
    while j < end and _is_digit(text[j]):
        j += 1
    is_float = False
    if j < end and text[j] == "." and j + 1 < end and _is_digit(text[j + 1]):
        is_float = True
        j += 1
        while j < end and _is_digit(text[j]):
            j += 1
    if j < end and text[j] in "eE":
        k = j + 1
        if k < end and text[k] in "+-":
            k += 1
        if k < end and _is_digit(text[k]):
            is_float = True
            j = k
            while j < end and _is_digit(text[j]):
                j += 1
    if j < end and _is_ident_char(text[j]):
        raise fail(f"unexpected {text[j]!r} right after the number {text[i:j]}", j)
    literal = text[i:j]
    if is_float:
        value: int | float = float(literal)
    else:
        digits = literal.lstrip("0") or "0"
        if len(digits) > _MAX_INT_DIGITS or int(digits) > 2**63 - 1:
            raise fail(f"the integer {literal} does not fit in 64 bits", i)
        value = int(digits)
    tokens.append(Token("NUMBER", value, i, j))
    return j


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, tokens: list[Token], full: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.full = full

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, column=pos + 1, text=self.full)

    def is_op(self, op: str) -> bool:
        return self.tok.kind == "OP" and self.tok.value == op

    def take(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def expect(self, op: str, context: str) -> Token:
        if not self.is_op(op):
            raise self.fail(f"expected '{op}' {context}; found {self.tok.describe()}", self.tok.pos)
        return self.take()

    def parse(self) -> Node:
        if self.tok.kind == "EOF":
            raise self.fail("empty expression", self.tok.pos)
        node = self.expr()
        if self.tok.kind != "EOF":
            raise self.fail(
                f"unexpected {self.tok.describe()} after a complete expression (missing operator?)",
                self.tok.pos,
            )
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.is_op("+") or self.is_op("-"):
            op = self.take()
            node = Binary(str(op.value), node, self.term(), op.pos)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.is_op("*") or self.is_op("/"):
            op = self.take()
            node = Binary(str(op.value), node, self.unary(), op.pos)
        return node

    def unary(self) -> Node:
        if self.is_op("-") or self.is_op("+"):
            op = self.take()
            return Unary(str(op.value), self.unary(), op.pos)
        return self.power()

    def power(self) -> Node:
        node = self.postfix()
        if self.is_op("^"):
            op = self.take()
            node = Binary("^", node, self.unary(), op.pos)
        return node

    def postfix(self) -> Node:
        node = self.primary()
        while self.is_op("."):
            dot = self.take()
            name, pos = self.member_name(dot)
            if self.is_op("("):
                args = self.arguments(name)
                node = Call(name, (node, *args), pos, method=True)
            elif isinstance(node, Path):
                node = Path((*node.segments, (name, pos)))
            else:
                node = Member(node, name, pos)
        return node

    def member_name(self, dot: Token) -> tuple[str, int]:
        masked = self.masked_name()
        if masked:
            return masked
        if self.tok.kind != "NAME":
            raise self.fail(
                f"expected a field or function name after '.'; found {self.tok.describe()}", self.tok.pos
            )
        t = self.take()
        return str(t.value), t.pos

    def masked_name(self) -> tuple[str, int] | None:
        """`*name` with nothing between: a masked parameter."""
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if self.is_op("*") and nxt is not None and nxt.kind == "NAME" and nxt.pos == self.tok.end:
            star = self.take()
            name = self.take()
            if str(name.value).startswith("@"):
                raise self.fail("a masked name is '*' then a name without '@'", star.pos)
            return "*" + str(name.value), star.pos
        return None

    def arguments(self, name: str) -> list[Node]:
        self.expect("(", f"after {name}")
        args: list[Node] = []
        if self.is_op(")"):
            self.take()
            return args
        while True:
            args.append(self.expr())
            if self.is_op(","):
                self.take()
                continue
            if self.is_op(")"):
                self.take()
                return args
            raise self.fail(
                f"expected ',' or ')' in the arguments of {name}(); found {self.tok.describe()}", self.tok.pos
            )

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "NUMBER" or t.kind == "STRING":
            self.take()
            return Literal(t.value, t.pos)
        if t.kind == "NAME":
            self.take()
            name = str(t.value)
            if self.is_op("("):
                if name.startswith("@"):
                    raise self.fail(f"'{name}' is a runtime field, not a function", t.pos)
                return Call(name, tuple(self.arguments(name)), t.pos)
            return Path(((name, t.pos),))
        masked = self.masked_name()
        if masked:
            return Path((masked,))
        if self.is_op("("):
            self.take()
            node = self.expr()
            self.expect(")", "to close the '('")
            return node
        if t.kind == "EOF":
            raise self.fail("the expression ends where a value was expected", t.pos)
        raise self.fail(f"expected a value (a name, number, string or '('); found {t.describe()}", t.pos)


def _parse_node(full: str, start: int, end: int) -> Node:
    try:
        return _Parser(tokenize(full, start, end), full).parse()
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply", column=start + 1, text=full) from None


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expr:
    """A bare expression (no `#{ }`); columns count from its first character."""
    return Expr(text, 1, _parse_node(text, 0, len(text)))


@functools.lru_cache(maxsize=4096)
def parse_template(text: str) -> Template:
    """Split field text into literal parts and `#{...}` expressions, parsing each expression.

    The end of an expression is the first `}` outside a quoted string, so expressions may sit in
    single-quoted SQL and hold quoted patterns. Text outside `#{ }` (like Hive's `${input1}`) is
    kept as it is.
    """
    parts: list[str | Expr] = []
    i = 0
    n = len(text)
    while True:
        j = text.find("#{", i)
        if j < 0:
            break
        k = j + 2
        quote = ""
        quote_pos = -1
        while k < n:
            c = text[k]
            if quote:
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote, quote_pos = c, k
            elif c == "}":
                break
            k += 1
        else:
            if quote:
                raise ExpressionError(
                    f"unterminated string: the {quote} at column {quote_pos + 1} is never closed "
                    f"(inside the '#{{' at column {j + 1})",
                    column=quote_pos + 1,
                    text=text,
                )
            raise ExpressionError(
                f"'#{{' at column {j + 1} is never closed with '}}'", column=j + 1, text=text
            )
        if j > i:
            parts.append(text[i:j])
        parts.append(Expr(text[j + 2 : k], j + 3, _parse_node(text, j + 2, k)))
        i = k + 1
    if i < n:
        parts.append(text[i:])
    return Template(text, tuple(parts))
