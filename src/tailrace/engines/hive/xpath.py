"""Hive's xpath UDFs: an XPath 1.0 evaluator over Python's ElementTree (no lxml needed).

Covered: absolute and relative location paths, `//`, `.`, `..`, `*`, `@name`, `@*`, `text()`,
`node()`, the child, descendant, descendant-or-self, self, parent and attribute axes,
predicates (positions, comparisons, nested paths), `| or and = != < <= > >= + - * div mod`,
and the core functions in `_FUNCS`. Anything else is refused when the path is parsed
(`XPathError`), so a literal path is refused before the query runs.
"""

from __future__ import annotations

import math
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class XPathError(ValueError):
    pass


@dataclass(frozen=True)
class _Attr:
    owner: ET.Element
    name: str
    value: str


@dataclass(frozen=True)
class _Text:
    owner: ET.Element
    value: str


class _Doc:
    def __init__(self, root: ET.Element) -> None:
        self.root = root


Node = Any  # ET.Element | _Attr | _Text | _Doc
Step = Callable[[list[Node]], list[Node]]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<str>\"[^\"]*\"|'[^']*')|(?P<op>//|::|!=|<=|>=|\.\.|[/\[\]()@,|=<>+*.-])"
    r"|(?P<name>[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?))"
)
_AXES = {"child", "descendant", "descendant-or-self", "self", "parent", "attribute"}


def _tokens(path: str) -> list[str]:
    out: list[str] = []
    pos = 0
    path = path.rstrip()
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            raise XPathError(f"unexpected {path[pos : pos + 10]!r} at character {pos + 1}")
        out.append(m.group().strip())
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over XPath 1.0's grammar; builds closures (context -> value)."""

    def __init__(self, path: str) -> None:
        self.toks = _tokens(path)
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise XPathError(f"expected {want or 'more'} but found {tok or 'the end'}")
        self.i += 1
        return tok

    def _operator_here(self) -> bool:
        # XPath: '*' and names are operators unless they start a step.
        prev = self.toks[self.i - 1] if self.i else None
        return prev is not None and prev not in {
            "@",
            "::",
            "(",
            "[",
            ",",
            "/",
            "//",
            "|",
            "+",
            "-",
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "and",
            "or",
            "div",
            "mod",
            "*",
        }

    def parse(self) -> Callable[[Any], Any]:
        e = self.binary(0)
        if self.peek() is not None:
            raise XPathError(f"unexpected {self.peek()}")
        return e

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("or",),
        ("and",),
        ("=", "!="),
        ("<", "<=", ">", ">="),
        ("+", "-"),
        ("*", "div", "mod"),
    )

    def binary(self, level: int) -> Callable[[Any], Any]:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._LEVELS[level] and (level < 5 or self._operator_here()):
            op = self.take()
            right = self.binary(level + 1)
            left = _binop(op, left, right)
        return left

    def unary(self) -> Callable[[Any], Any]:
        if self.peek() == "-":
            self.take()
            inner = self.unary()
            return lambda c: -_num(inner(c))
        left = self.path()
        while self.peek() == "|":
            self.take()
            right = self.path()
            left = (lambda a, b: lambda c: _union(a(c), b(c)))(left, right)
        return left

    def path(self) -> Callable[[Any], Any]:
        tok = self.peek()
        steps: list[Step] = []
        if tok in ("/", "//"):
            self.take()
            steps = [] if tok == "/" else [_descendant_or_self]
            if tok == "//" or (self.peek() is not None and self._starts_step()):
                steps += self.steps()
            return lambda c: _walk([_doc_of(c[0])], steps)
        if self._starts_step():
            steps = self.steps()
            return lambda c: _walk([c[0]], steps)
        prim = self.primary()
        preds = self.predicates()
        if preds or self.peek() in ("/", "//"):
            if self.peek() in ("/", "//"):
                if self.take() == "//":
                    steps.append(_descendant_or_self)
                steps += self.steps()

            def run(c: Any, prim: Callable[[Any], Any] = prim) -> Any:
                nodes = prim(c)
                if not isinstance(nodes, list):
                    raise XPathError("a path needs a node-set")
                for p in preds:
                    nodes = _filter(nodes, p)
                return _walk(nodes, steps)

            return run
        return prim

    def _starts_step(self) -> bool:
        tok = self.peek()
        if tok in (".", "..", "@", "*"):
            return True
        if tok is None or not re.match(r"[A-Za-z_]", tok) or (tok in ("and", "or", "div", "mod") and self.i):
            return False
        return self.peek(1) != "(" or tok in ("text", "node")

    def steps(self) -> list[Step]:
        out = [self.step()]
        while self.peek() in ("/", "//"):
            if self.take() == "//":
                out.append(_descendant_or_self)
            out.append(self.step())
        return out

    def step(self) -> Step:
        tok = self.take()
        if tok == ".":
            return lambda nodes: nodes
        if tok == "..":
            return lambda nodes: _dedupe([p for n in nodes if (p := _parent(n)) is not None])
        axis = "child"
        if tok == "@":
            axis, tok = "attribute", self.take()
        elif self.peek() == "::":
            if tok not in _AXES:
                raise XPathError(f"the {tok} axis is not supported")
            self.take("::")
            axis, tok = tok, self.take()
        test = tok
        if tok in ("text", "node") and self.peek() == "(":
            self.take("(")
            self.take(")")
            test = tok + "()"
        preds = self.predicates()

        def run(nodes: list[Node]) -> list[Node]:
            out: list[Node] = []
            for n in nodes:
                found = [m for m in _axis(n, axis) if _matches(m, test, axis)]
                for p in preds:
                    found = _filter(found, p)
                out += found
            return _dedupe(out)

        return run

    def predicates(self) -> list[Callable[[Any], Any]]:
        preds = []
        while self.peek() == "[":
            self.take("[")
            preds.append(self.binary(0))
            self.take("]")
        return preds

    def primary(self) -> Callable[[Any], Any]:
        tok = self.take()
        if tok == "(":
            e = self.binary(0)
            self.take(")")
            return e
        if tok[0] in "\"'":
            text = tok[1:-1]
            return lambda c: text
        if re.fullmatch(r"\d+(\.\d*)?|\.\d+", tok):
            number = float(tok)
            return lambda c: number
        if self.peek() == "(" and tok in _FUNCS:
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.binary(0))
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            fn = _FUNCS[tok]
            return lambda c: fn(c, *[a(c) for a in args])
        if self.peek() == "(":
            raise XPathError(f"function {tok}() is not supported")
        raise XPathError(f"unexpected {tok}")


def _doc_of(n: Node) -> _Doc:
    return n if isinstance(n, _Doc) else _STATE.doc[0]


class _State(threading.local):
    """The document being evaluated (DuckDB may call from several threads)."""

    def __init__(self) -> None:
        self.doc: list[_Doc] = []
        self.parents: dict[int, Node] = {}

    def __reduce__(self) -> tuple[type[_State], tuple[()]]:
        # Shipped to a Spark executor with the xpath functions (spark/udfs.py): a fresh one.
        return (_State, ())


_STATE = _State()


def _parent(n: Node) -> Node | None:
    if isinstance(n, _Attr | _Text):
        return n.owner
    if isinstance(n, _Doc):
        return None
    return _STATE.parents.get(id(n))


def _children(n: Node) -> list[Node]:
    if isinstance(n, _Doc):
        return [n.root]
    if not isinstance(n, ET.Element):
        return []
    out: list[Node] = []
    if n.text:
        out.append(_Text(n, n.text))
    for child in n:
        out.append(child)
        if child.tail:
            out.append(_Text(n, child.tail))
    return out


def _descendants(n: Node) -> list[Node]:
    out: list[Node] = []
    for c in _children(n):
        out.append(c)
        out += _descendants(c)
    return out


def _axis(n: Node, axis: str) -> list[Node]:
    if axis == "child":
        return _children(n)
    if axis == "attribute":
        return [_Attr(n, k, v) for k, v in n.attrib.items()] if isinstance(n, ET.Element) else []
    if axis == "descendant":
        return _descendants(n)
    if axis == "descendant-or-self":
        return [n, *_descendants(n)]
    if axis == "self":
        return [n]
    p = _parent(n)
    return [] if p is None else [p]


def _descendant_or_self(nodes: list[Node]) -> list[Node]:
    return _dedupe([m for n in nodes for m in _axis(n, "descendant-or-self")])


def _matches(n: Node, test: str, axis: str) -> bool:
    if test == "node()":
        return True
    if test == "text()":
        return isinstance(n, _Text)
    if axis == "attribute":
        return isinstance(n, _Attr) and test in ("*", n.name)
    return isinstance(n, ET.Element) and test in ("*", n.tag)


def _dedupe(nodes: list[Node]) -> list[Node]:
    seen: set[Any] = set()
    out = []
    for n in nodes:
        key = id(n) if isinstance(n, ET.Element | _Doc) else n
        if key not in seen:
            seen.add(key)
            out.append(n)
    return out


def _union(a: Any, b: Any) -> list[Node]:
    if not isinstance(a, list) or not isinstance(b, list):
        raise XPathError("| needs node-sets")
    return _dedupe(a + b)


def _walk(nodes: list[Node], steps: list[Step]) -> list[Node]:
    for s in steps:
        nodes = s(nodes)
    return nodes


def _filter(nodes: list[Node], pred: Callable[[Any], Any]) -> list[Node]:
    out = []
    for i, n in enumerate(nodes, 1):
        v = pred((n, i, len(nodes)))
        if (v == i) if isinstance(v, float) else _bool(v):
            out.append(n)
    return out


def string_value(n: Node) -> str:
    if isinstance(n, _Attr | _Text):
        return n.value
    if isinstance(n, _Doc):
        return string_value(n.root)
    return "".join(n.itertext())


def _str(v: Any) -> str:
    if isinstance(v, list):
        return string_value(v[0]) if v else ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return str(int(v)) if v == int(v) else repr(v)
    return str(v)


def _num(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, float):
        return v
    text = _str(v).strip()
    return float(text) if re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", text) else math.nan


def _bool(v: Any) -> bool:
    if isinstance(v, list):
        return bool(v)
    if isinstance(v, float):
        return v == v and v != 0
    return bool(v)


def _compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        left = [string_value(n) for n in a] if isinstance(a, list) else [a]
        right = [string_value(n) for n in b] if isinstance(b, list) else [b]
        return any(_compare(op, x, y) for x in left for y in right)
    if op in ("=", "!="):
        if isinstance(a, bool) or isinstance(b, bool):
            eq = _bool(a) == _bool(b)
        elif isinstance(a, float) or isinstance(b, float):
            eq = _num(a) == _num(b)
        else:
            eq = _str(a) == _str(b)
        return eq if op == "=" else not eq
    x, y = _num(a), _num(b)
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _binop(op: str, left: Callable[[Any], Any], right: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if op == "or":
        return lambda c: _bool(left(c)) or _bool(right(c))
    if op == "and":
        return lambda c: _bool(left(c)) and _bool(right(c))
    if op in ("=", "!=", "<", "<=", ">", ">="):
        return lambda c: _compare(op, left(c), right(c))

    def arith(c: Any) -> float:
        x, y = _num(left(c)), _num(right(c))
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "div":
            if y:
                return x / y
            return math.nan if x == 0 or x != x else math.copysign(math.inf, x * math.copysign(1.0, y))
        return math.fmod(x, y) if y else math.nan

    return arith


def _round(x: float) -> float:
    return x if x != x or math.isinf(x) else float(math.floor(x + 0.5))


_FUNCS: dict[str, Callable[..., Any]] = {
    "count": lambda c, ns: float(len(ns)),
    "sum": lambda c, ns: float(sum(_num(string_value(n)) for n in ns)),
    "string": lambda c, v=None: _str([c[0]] if v is None else v),
    "number": lambda c, v=None: _num([c[0]] if v is None else v),
    "boolean": lambda c, v: _bool(v),
    "not": lambda c, v: not _bool(v),
    "true": lambda c: True,
    "false": lambda c: False,
    "position": lambda c: float(c[1]),
    "last": lambda c: float(c[2]),
    "name": lambda c, ns=None: _name(ns if ns is not None else [c[0]]),
    "local-name": lambda c, ns=None: _name(ns if ns is not None else [c[0]]).rpartition(":")[2],
    "concat": lambda c, *vs: "".join(_str(v) for v in vs),
    "contains": lambda c, a, b: _str(b) in _str(a),
    "starts-with": lambda c, a, b: _str(a).startswith(_str(b)),
    "string-length": lambda c, v=None: float(len(_str([c[0]] if v is None else v))),
    "normalize-space": lambda c, v=None: " ".join(_str([c[0]] if v is None else v).split()),
    "substring-before": lambda c, a, b: _str(a).partition(_str(b))[0] if _str(b) in _str(a) else "",
    "substring-after": lambda c, a, b: _str(a).partition(_str(b))[2] if _str(b) in _str(a) else "",
    "substring": lambda c, s, start, n=None: _substring(_str(s), _num(start), None if n is None else _num(n)),
    "translate": lambda c, s, a, b: _translate(_str(s), _str(a), _str(b)),
    "floor": lambda c, v: float(math.floor(_num(v))) if math.isfinite(_num(v)) else _num(v),
    "ceiling": lambda c, v: float(math.ceil(_num(v))) if math.isfinite(_num(v)) else _num(v),
    "round": lambda c, v: _round(_num(v)),
}


def _name(ns: list[Node]) -> str:
    if not ns:
        return ""
    n = ns[0]
    return n.name if isinstance(n, _Attr) else n.tag if isinstance(n, ET.Element) else ""


def _substring(s: str, start: float, length: float | None) -> str:
    first = _round(start)
    last = math.inf if length is None else first + _round(length)
    return "".join(ch for i, ch in enumerate(s, 1) if first <= i < last)


def _translate(s: str, a: str, b: str) -> str:
    table: dict[str, str | None] = {}
    for i, ch in enumerate(a):
        table.setdefault(ch, b[i] if i < len(b) else None)
    return "".join(table.get(ch, ch) or "" for ch in s if table.get(ch, ch) is not None)


def compile_path(path: str) -> Callable[[Any], Any]:
    """Parse an XPath expression, or raise XPathError naming what is not supported."""
    if not path.strip():
        raise XPathError("an empty XPath expression")
    return _Parser(path).parse()


def evaluate(xml: str, path: str) -> Any:
    fn = compile_path(path)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise XPathError(f"invalid XML document: {e}") from None
    doc = _Doc(root)
    parents: dict[int, Node] = {id(root): doc}
    for parent in root.iter():
        for child in parent:
            parents[id(child)] = parent
    _STATE.parents, _STATE.doc = parents, [doc]
    return fn((doc, 1, 1))


# Hive's UDFs: xpath returns the values of text and attribute nodes (elements have none).
def xpath(xml: str, path: str) -> list[str]:
    v = evaluate(xml, path)
    if not isinstance(v, list):
        raise XPathError("xpath needs an expression that gives a node-set")
    return [n.value for n in v if isinstance(n, _Attr | _Text)]


def xpath_string(xml: str, path: str) -> str:
    return _str(evaluate(xml, path))


def xpath_boolean(xml: str, path: str) -> bool:
    return _bool(evaluate(xml, path))


def xpath_double(xml: str, path: str) -> float:
    return _num(evaluate(xml, path))


def _java_long(x: float, bits: int) -> int:
    # Java's (long)/(int) cast of a double: NaN is 0, out of range saturates; short and byte
    # casts go through int and wrap.
    if x != x:
        return 0
    limit = 1 << (63 if bits == 64 else 31)
    v = max(-limit, min(limit - 1, int(x))) if math.isfinite(x) else (limit - 1 if x > 0 else -limit)
    if bits < 32:
        v = (v + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
    return v


def xpath_long(xml: str, path: str) -> int:
    return _java_long(_num(evaluate(xml, path)), 64)


def xpath_int(xml: str, path: str) -> int:
    return _java_long(_num(evaluate(xml, path)), 32)


def xpath_short(xml: str, path: str) -> int:
    return _java_long(_num(evaluate(xml, path)), 16)
