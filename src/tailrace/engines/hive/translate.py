"""Hive queries to DuckDB SQL: a sqlglot AST rewrite that keeps Hive's semantics.

sqlglot's own hive->duckdb transpile runs but gives wrong answers for log scripts (see
shared/compat/log-pipeline.md §3): `substr(s, 0, n)` loses a character, `LATERAL VIEW
json_tuple` does not parse in DuckDB, and failed casts raise instead of giving NULL. The
rules here fix those and add what the engine needs to report: hidden flag columns for
malformed input and a tie-breaker so ORDER BY gives one deterministic order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from tailrace.engines.hive import functions, javatime, serde, udtf
from tailrace.engines.hive.exprtypes import ExprTypes, window_order
from tailrace.engines.hive.laterals import LateralViews, Source, from_clause
from tailrace.engines.hive.translate_errors import TranslateError
from tailrace.engines.hive.udtf import hoist_joins

_DUCK = Dialect.get_or_raise("duckdb")
_REGEX_META = set(".^$*+?()[]{}|\\")


@dataclass
class ResolvedTable:
    view: str
    table: str
    """Qualified Hive name, e.g. default.fluentlog."""
    columns: dict[str, str]
    """Visible columns (data then partition) and their Hive types."""
    query: exp.Expr | None = None
    """For a view: its query (Hive dialect), read in place of the name."""


FLAG_SHIFT = 1 << 32


@dataclass
class Flag:
    name: str
    kind: str  # "packed": short lines + FLAG_SHIFT x bad JSON
    aggregated: bool


@dataclass
class Translated:
    sql: str
    flags: list[Flag]
    input_tables: list[str]
    hidden: int
    """How many engine columns (flags, tie-breaker) follow the user's columns."""


def _bottom_up(root: exp.Expr, fun: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """Apply fun to every node, children before parents (sqlglot's transform skips the
    children of a node it replaced, and nested rewrites need them)."""
    for node in reversed(list(root.walk(bfs=False))):
        new = fun(node)
        if new is not node:
            if node is root:
                root = new
            else:
                node.replace(new)
    return root


def cte_reference(table: exp.Table, root: exp.Expr) -> bool:
    """Whether `table` names a CTE in scope: one of an enclosing WITH (up to `root`), and within
    a CTE's own query only the CTEs before it, as DuckDB binds them. Any other name is a
    metastore table: a name left alone would reach the engine's own catalog (duckdb_tables, a
    file read by its name)."""
    if table.db:
        return False
    name = table.name.lower()
    child: exp.Expr = table
    while child is not root and child.parent is not None:
        parent = child.parent
        if isinstance(parent, exp.With):
            before = parent.expressions[: child.index if isinstance(child, exp.CTE) else 0]
            if any(c.alias_or_name.lower() == name for c in before):
                return True
        else:
            with_ = parent.args.get("with_")
            visible = with_.expressions if isinstance(with_, exp.With) and with_ is not child else []
            if any(c.alias_or_name.lower() == name for c in visible):
                return True
        child = parent
    return False


def _fn2(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _call(name: str, arg: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[arg])


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


# String functions whose arguments Hive converts to text (argument names of sqlglot's nodes).
_TEXT_ARGS: dict[type[exp.Expr], tuple[str, ...]] = {
    exp.RegexpSplit: ("this", "expression"),
    exp.Length: ("this",),
    exp.Upper: ("this",),
    exp.Lower: ("this",),
    exp.Reverse: ("this",),
    exp.Ascii: ("this",),
    exp.Initcap: ("this",),
    exp.Repeat: ("this",),
    exp.Pad: ("this", "fill_pattern"),
    exp.Trim: ("this",),
    exp.RegexpReplace: ("this", "replacement"),
    exp.RegexpExtract: ("this",),
    exp.Substring: ("this",),
    exp.Translate: ("this", "from_", "to"),
}

# Math functions whose string arguments Hive reads as doubles (GenericUDFBaseNumeric, UDFMath).
_NUMBER_ARGS = (
    exp.Abs, exp.Neg, exp.Negative, exp.Floor, exp.Ceil, exp.Round, exp.Sqrt, exp.Ln, exp.Log,
    exp.Exp, exp.Pow, exp.Sin, exp.Cos, exp.Tan, exp.Asin, exp.Acos, exp.Atan, exp.Degrees,
    exp.Radians, exp.Sign, exp.Cbrt, exp.IntDiv, exp.Factorial,
)  # fmt: skip
_NUMBER_ARG_NAMES = {"pmod", "bround", "positive", "bin", "log10", "log2"}


class Translator(LateralViews, ExprTypes):
    def __init__(self, resolve: Callable[[exp.Table], ResolvedTable], *, timezone: str = "UTC") -> None:
        self.resolve = resolve
        self.timezone = timezone
        self.types: dict[str, str] = {}
        self.sources: dict[str, Source] = {}
        self.by_node: dict[int, Source] = {}
        self.input_tables: list[str] = []
        self._n = 0
        self._generated: set[int] = set()

    # --- entry point ---------------------------------------------------------------------

    def translate(self, query: exp.Expr, *, stable_order: bool = True) -> Translated:
        q = query.copy()
        for hint in list(q.find_all(exp.Hint)):
            hint.pop()  # MAPJOIN(b), STREAMTABLE(a)...: plans for Hive's MapReduce, not results
        functions.check_names(q)
        for select in list(q.find_all(exp.Select)):
            hoist_joins(select)
        self._replace_tables(q)
        for select in list(q.find_all(exp.Select)):
            self._rewrite_laterals(select)
        for select in list(q.find_all(exp.Select)):
            self._expand_stars(select)
            udtf.select_list(select)
            udtf.grouping_id(select)
        q = _bottom_up(q, self._rewrite_node)
        flags: list[Flag] = []
        hidden = 0
        if isinstance(q, exp.Select):
            before = len(q.expressions)
            flags = self._finish_top(q, stable_order=stable_order)
            hidden = len(q.expressions) - before
        return Translated(q.sql(dialect="duckdb"), flags, self.input_tables, hidden)

    # --- tables ----------------------------------------------------------------------------

    def _replace_tables(self, q: exp.Expr, depth: int = 0) -> None:
        for table in list(q.find_all(exp.Table)):
            if not table.name or cte_reference(table, q):
                continue
            if isinstance(table.parent, exp.Schema):
                continue
            resolved = self.resolve(table)
            alias = table.alias or table.name
            if resolved.query is not None:
                if depth > 16:
                    raise TranslateError(f"view {resolved.table} refers to itself", table)
                view = resolved.query.copy()
                for select in list(view.find_all(exp.Select)):
                    hoist_joins(select)
                sub = exp.Subquery(this=view, alias=exp.TableAlias(this=exp.to_identifier(alias)))
                table.replace(sub)
                self._replace_tables(view, depth + 1)
                continue
            renamed = exp.Table(
                this=_ident(resolved.view), alias=exp.TableAlias(this=exp.to_identifier(alias))
            )
            table.replace(renamed)
            new: exp.Expr = renamed
            sampled = udtf.sample(renamed, table.args.get("sample"))
            if sampled is not None:
                new.replace(sampled)
                new = sampled
            if resolved.table not in self.input_tables:
                self.input_tables.append(resolved.table)
            for col, typ in resolved.columns.items():
                self._note_type(col, typ)
            self.sources[alias.lower()] = Source(
                alias=alias,
                table=resolved.table,
                hidden=["__short"],
                node=id(new),
                columns=list(resolved.columns),
            )
            self.by_node[id(new)] = self.sources[alias.lower()]

    def _note_type(self, column: str, typ: str) -> None:
        old = self.types.get(column)
        self.types[column] = typ if old in (None, typ) else "unknown"

    # --- SELECT * ----------------------------------------------------------------------------

    def _select_sources(self, select: exp.Select) -> list[Source]:
        items: list[exp.Expr] = []
        frm = from_clause(select)
        if frm is not None:
            items.append(frm.this)
        items += [
            j.this
            for j in select.args.get("joins") or []
            if (j.args.get("kind") or "").upper() not in ("SEMI", "ANTI")  # their columns are not visible
        ]
        found: list[Source] = []
        for item in items:
            src = self.by_node.get(id(item))
            if src is not None:
                found.append(src)
        return found

    def _expand_stars(self, select: exp.Select) -> None:
        sources = self._select_sources(select)
        if not sources or id(select) in self._generated:
            return
        by_alias = {s.alias.lower(): s for s in sources}
        for i, item in enumerate(list(select.expressions)):
            if isinstance(item, exp.Star):
                hidden = sorted({h for s in sources for h in s.hidden})
                select.expressions[i].set("except_", [exp.column(h) for h in hidden])
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                src = by_alias.get(item.table.lower())
                if src is not None:
                    kept = list(item.this.args.get("except_") or [])
                    item.this.set("except_", [*kept, *(exp.column(h) for h in src.hidden)])

    # --- expressions -----------------------------------------------------------------------

    def _rewrite_node(self, node: exp.Expr) -> exp.Expr:
        keys = _TEXT_ARGS.get(type(node))
        if keys:
            # Hive's string functions read a number or boolean argument as its text.
            for key in keys:
                text = node.args.get(key)
                if isinstance(text, exp.Expr) and (self._numeric(text) or isinstance(text, exp.Boolean)):
                    node.set(key, exp.Cast(this=text, to=exp.DataType.build("VARCHAR")))
        if isinstance(node, exp.Round) and self._integral(node.this):
            # GenericUDFRound keeps an integer's type (round(10) is 10, not 10.0), HALF_UP.
            places = node.args.get("decimals")
            return node.this if places is None else _fn2("round", node.this, places)
        if isinstance(node, _NUMBER_ARGS):
            # Hive's math UDFs read a string argument as a double ('x' is NULL, not an error);
            # DIV and bin() read it as a bigint, as LazyLong parses it.
            to_long = isinstance(node, exp.IntDiv | exp.Factorial)
            for key in ("this", "expression"):
                arg = node.args.get(key)
                if isinstance(arg, exp.Expr) and self._stringy(arg):
                    node.set(key, _call("__hive_to_bigint", arg) if to_long else self._to_double(arg))
        elif isinstance(node, exp.Anonymous) and node.name.lower() in _NUMBER_ARG_NAMES:
            to_long = node.name.lower() == "bin"
            args = [
                (_call("__hive_to_bigint", a) if to_long else self._to_double(a)) if self._stringy(a) else a
                for a in node.expressions
            ]
            node.set("expressions", args)
        if isinstance(node, exp.Func | exp.IntDiv):
            done = functions.rewrite(node)
            if done is not None:
                return done
        if isinstance(node, exp.Like) and not isinstance(node.parent, exp.Escape):
            # Hive's LIKE reads \_ and \% as the characters themselves.
            return exp.Escape(this=node.copy(), expression=exp.Literal.string("\\"))
        if isinstance(node, exp.If):
            self._same_type(node, ("true", "false"))
            return node
        if isinstance(node, exp.Coalesce | exp.Array):
            # Hive's common type of strings and numbers is string.
            items = ([node.this] if isinstance(node, exp.Coalesce) else []) + list(node.expressions)
            if any(self._stringy(i) for i in items) and any(self._numeric(i) for i in items):
                fixed = [_call("__hive_to_string", i) if self._numeric(i) else i for i in items]
                if isinstance(node, exp.Coalesce):
                    node.set("this", fixed[0])
                    fixed = fixed[1:]
                node.set("expressions", fixed)
            return node
        if isinstance(node, exp.Case):
            for branch in node.args.get("ifs") or []:
                self._same_type_pair(branch, "true", node, "default")
            return node
        if isinstance(node, exp.Literal) and not node.is_string and re.search(r"[.eE]", node.this):
            # Hive reads 1.5 and 1e3 as DOUBLE; DuckDB would make 1.5 a DECIMAL.
            return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
        if isinstance(node, exp.Substring):
            return self._substr(node)
        if isinstance(node, exp.RegexpReplace):
            return self._regexp_replace(node)
        if isinstance(node, exp.RegexpSplit) and node.expression == exp.Literal.string(""):
            # Java's split(s, "", -1) ends with '' ("abc" gives a, b, c, ''); "" stays [""].
            return functions.template(
                "CASE WHEN _0 = '' THEN [''] ELSE list_append(string_split(_0, ''), '') END", node.this
            )
        if isinstance(node, exp.JSONExtractScalar):
            path = node.expression.sql(dialect="duckdb")
            return sqlglot.parse_one(f"TRY(json_extract_string(__X__, {path}))", read="duckdb").transform(
                lambda n: node.this if isinstance(n, exp.Column) and n.name == "__X__" else n
            )
        if isinstance(node, exp.UnixToStr):
            return self._from_unixtime(node)
        if isinstance(node, exp.StrToUnix):
            return functions.unix_timestamp(node, stringy=self._stringy(node.this), timezone=self.timezone)
        if isinstance(node, exp.Cast | exp.TryCast):
            return self._cast(node)
        if isinstance(node, exp.TsOrDsToDate) and self._stringy(node.this):
            # to_date gives the 'yyyy-MM-dd' string of the text's date prefix; inside year(),
            # month()... (where sqlglot puts one) the date itself is wanted.
            date = _call("__hive_date", node.this)
            if isinstance(node.parent, exp.Func) and not isinstance(node.parent, exp.Anonymous):
                return date
            return exp.Cast(this=date, to=exp.DataType.build("VARCHAR"))
        if isinstance(node, exp.TimeStrToTime) and self._stringy(node.this):
            return _call("__hive_ts", node.this)
        if isinstance(node, exp.Year | exp.Month | exp.Day) and self._stringy(node.this):
            node.set("this", _call("__hive_date", node.this))
            return node
        if isinstance(node, exp.Hour | exp.Minute | exp.Second):
            node.set("this", _call("__hive_time", node.this))
            return node
        if isinstance(node, exp.TimeToStr):
            # date_format: SimpleDateFormat letters (G, E, a ...), not strftime's.
            return exp.Anonymous(
                this="__hive_date_format",
                expressions=[exp.Cast(this=node.this, to=exp.DataType.build("VARCHAR")), node.args["format"]],
            )
        if isinstance(node, exp.WeekOfYear):
            if self._stringy(node.this):
                node.set("this", _call("__hive_ts", node.this))
            return node
        if isinstance(node, exp.DateDiff | exp.TsOrDsAdd | exp.DateAdd | exp.DateSub):
            keys = ("this", "expression") if isinstance(node, exp.DateDiff) else ("this",)
            for key in keys:
                side = node.args.get(key)
                if side is not None and self._stringy(side):
                    node.set(key, _call("__hive_date", side))
            if isinstance(node, exp.DateDiff):
                return node
            # date_add/date_sub return the 'yyyy-MM-dd' string in Hive 0.x/1.x.
            as_date = exp.Cast(this=node.copy(), to=exp.DataType.build("DATE"))
            return exp.Cast(this=as_date, to=exp.DataType.build("VARCHAR"))
        if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
            left, right = node.this, node.expression
            # Both sides as doubles, a string literal too: 'x' = 1 is NULL, int_col = '1.5' false.
            if self._numeric(right) and self._stringy(left):
                node.set("this", self._to_double(left))
            elif self._numeric(left) and self._stringy(right):
                node.set("expression", self._to_double(right))
            return node
        if isinstance(node, exp.Between) and self._stringy(node.this):
            if self._numeric(node.args["low"]) or self._numeric(node.args["high"]):
                node.set("this", self._to_double(node.this))
            return node
        if isinstance(node, exp.Select):
            udtf.sort_by(node)
            return node
        if isinstance(node, exp.Group):
            udtf.grouping(node)
            return node
        if isinstance(node, exp.ArraySize):
            arg = node.this
            mapish = (
                isinstance(arg, exp.VarMap | exp.Map)
                or (isinstance(arg, exp.Anonymous) and arg.name.lower() == "__hive_str_to_map")
                or (isinstance(arg, exp.Column) and self.types.get(arg.name.lower(), "").startswith("map<"))
            )
            # size(NULL) is -1 in Hive.
            return exp.Coalesce(
                this=_call("cardinality" if mapish else "len", arg), expressions=[exp.Literal.number(-1)]
            )
        if isinstance(node, exp.DayOfWeek):
            return functions.template("dayofweek(__hive_date(_0)) + 1", node.this)
        if isinstance(node, exp.DayOfMonth | exp.Quarter | exp.DayOfYear) and self._stringy(node.this):
            node.set("this", _call("__hive_date", node.this))
            return node
        if isinstance(node, exp.In):
            numbers = node.expressions and all(self._numeric_literal(e) for e in node.expressions)
            if numbers and self._stringy(node.this) and not isinstance(node.this, exp.Literal):
                node.set("this", self._to_double(node.this))
            return node
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            for key in ("this", "expression"):
                side = node.args.get(key)
                if side is not None and self._stringy(side):
                    node.set(key, self._to_double(side))
            if isinstance(node, exp.Mod):
                # x % 0 is NULL in Hive.
                node.set("expression", exp.Nullif(this=node.expression, expression=exp.Literal.number(0)))
            return node
        if isinstance(node, exp.Sum | exp.Avg) and self._stringy(node.this):
            node.set("this", self._to_double(node.this))
            return node
        return node

    def _from_unixtime(self, node: exp.UnixToStr) -> exp.Expr:
        arg = self._to_double(node.this) if self._stringy(node.this) else node.this
        fmt = _DUCK.generator().format_time(node) or "'%Y-%m-%d %H:%M:%S'"
        sql = javatime.from_unixtime_sql(node.meta.get(javatime.META_KEY), fmt, self.timezone)
        return sqlglot.parse_one(sql, read="duckdb").transform(
            lambda n: arg if isinstance(n, exp.Column) and n.name == "__X__" else n
        )

    def _same_type(self, node: exp.Expr, keys: tuple[str, str]) -> None:
        self._same_type_pair(node, keys[0], node, keys[1])

    def _same_type_pair(self, a: exp.Expr, ka: str, b: exp.Expr, kb: str) -> None:
        """IF/CASE with a string and a number branch: Hive's common type is string."""
        x, y = a.args.get(ka), b.args.get(kb)
        if x is None or y is None:
            return
        if self._stringy(x) and self._numeric(y):
            b.set(kb, _call("__hive_to_string", y))
        elif self._stringy(y) and self._numeric(x):
            a.set(ka, _call("__hive_to_string", x))

    def _substr(self, node: exp.Substring) -> exp.Expr:
        s, start, length = node.this, node.args.get("start"), node.args.get("length")
        if start is None:
            return node
        lit_start = int(start.this) if self._int_literal(start) else None
        if isinstance(start, exp.Neg) and self._int_literal(start.this):
            lit_start = -int(start.this.this)
        lit_len = None
        if length is not None and self._int_literal(length):
            lit_len = int(length.this)
        if lit_start is not None and lit_start >= 0 and (length is None or lit_len is not None):
            # Hive's UDFSubstr.makeIndex: position 0 and 1 both mean the first character.
            if lit_len is not None and lit_len <= 0:
                return exp.If(
                    this=exp.Is(this=s, expression=exp.Null()), true=exp.Null(), false=exp.Literal.string("")
                )
            args = [s, exp.Literal.number(max(lit_start, 1))]
            if lit_len is not None:
                args.append(exp.Literal.number(lit_len))
            return exp.Anonymous(this="substring", expressions=args)
        return exp.Anonymous(
            this="__hive_substr",
            expressions=[s, start, length if length is not None else exp.Literal.number(2147483647)],
        )

    @staticmethod
    def _int_literal(node: exp.Expr | None) -> bool:
        return (
            isinstance(node, exp.Literal)
            and not node.is_string
            and re.fullmatch(r"\d+", node.this) is not None
        )

    def _regexp_replace(self, node: exp.RegexpReplace) -> exp.Expr:
        pattern, repl = node.expression, node.args.get("replacement")
        if isinstance(repl, exp.Literal) and repl.is_string:
            # Java replacement strings use $1 for groups and \ to quote; RE2 uses \1.
            text = re.sub(
                r"\\(.)|\$(\d)", lambda m: m.group(1) if m.group(1) else "\\" + m.group(2), repl.this
            )
            literal_out = "\\" not in text
            if (
                isinstance(pattern, exp.Literal)
                and pattern.is_string
                and not (set(pattern.this) & _REGEX_META)
                and literal_out
                and pattern.this
            ):
                return exp.Anonymous(
                    this="replace", expressions=[node.this, pattern, exp.Literal.string(text)]
                )
            node.set("replacement", exp.Literal.string(text))
        node.set("modifiers", exp.Literal.string("g"))
        return node

    def _cast(self, node: exp.Cast) -> exp.Expr:
        to = node.to
        t = to.this
        macro = {
            exp.DataType.Type.BIGINT: "__hive_to_bigint",
            exp.DataType.Type.INT: "__hive_to_int",
            exp.DataType.Type.SMALLINT: "__hive_to_smallint",
            exp.DataType.Type.TINYINT: "__hive_to_tinyint",
            exp.DataType.Type.TEXT: "__hive_cast_string",
            exp.DataType.Type.VARCHAR: "__hive_cast_string",
            exp.DataType.Type.BOOLEAN: "__hive_to_boolean",
        }.get(t)
        if macro is not None:
            call = exp.Anonymous(this=macro, expressions=[node.this])
            if t == exp.DataType.Type.VARCHAR and to.expressions:
                # varchar(n) keeps the first n characters, as HiveVarchar does.
                return exp.Anonymous(this="left", expressions=[call, to.expressions[0].this.copy()])
            return call
        if t == exp.DataType.Type.DATE and self._stringy(node.this):
            return _call("__hive_date", node.this)
        if t == exp.DataType.Type.TIMESTAMP and self._stringy(node.this):
            return _call("__hive_ts", node.this)
        if t == exp.DataType.Type.TIMESTAMP and self._numeric(node.this):
            # A number is seconds since the epoch, shown in the session time zone.
            return functions.template(
                f"timezone({serde.sql_str(self.timezone)}, to_timestamp(CAST(_0 AS DOUBLE)))", node.this
            )
        if t in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT) and self._timestampy(node.this):
            # Seconds since the epoch with the fraction (UDFToDouble); DuckDB has no such cast.
            return exp.TryCast(this=_call("epoch", node.this), to=to)
        if t == exp.DataType.Type.DECIMAL:
            if not to.expressions:
                to = exp.DataType.build("DECIMAL(10, 0)")  # Hive's DECIMAL is decimal(10,0)
            # A double becomes a decimal from its shortest text (HiveDecimal.create), so
            # CAST(1.005 AS DECIMAL(4,2)) is 1.01, not the binary value's 1.00.
            dec = to.sql(dialect="duckdb")
            return functions.template(
                f"CASE WHEN typeof(_0) IN ('DOUBLE', 'FLOAT') THEN TRY_CAST(CAST(_0 AS VARCHAR) AS {dec}) "
                f"ELSE TRY_CAST(_0 AS {dec}) END",
                node.this,
            )
        return exp.TryCast(this=node.this, to=to)

    # --- the statement's own SELECT --------------------------------------------------------

    def _finish_top(self, q: exp.Select, *, stable_order: bool) -> list[Flag]:
        aggregated = bool(q.args.get("group")) or any(
            agg.find_ancestor(exp.Window, exp.Subquery) is None
            for e in q.expressions
            for agg in e.find_all(exp.AggFunc)
        )
        flags: list[Flag] = []
        terms: list[str] = []
        if not q.args.get("distinct"):
            # One BIGINT per row: short lines + 2^32 x bad JSON (one column, one aggregate).
            for src in self._select_sources(q):
                for h in src.hidden:
                    weight = "" if h == "__short" else f"{FLAG_SHIFT} * "
                    terms.append(f"{weight}CAST({_ident(src.alias).sql(dialect='duckdb')}.{h} AS BIGINT)")
        if terms:
            text = " + ".join(terms)
            expr = sqlglot.parse_one(f"sum({text})" if aggregated else text, read="duckdb")
            q.append("expressions", exp.alias_(expr, "__f"))
            flags.append(Flag(name="__f", kind="packed", aggregated=aggregated))
        order = q.args.get("order")
        if not stable_order:
            return flags
        if order is None and q.args.get("distinct") and not q.args.get("group"):
            # SELECT DISTINCT is a GROUP BY of every column in Hive: key order too (LIMIT after).
            keys = [
                exp.Ordered(this=exp.Literal.number(i + 1), nulls_first=True)
                for i in range(len(q.expressions))
            ]
            q.set("order", exp.Order(expressions=keys))
        elif q.args.get("distinct"):
            return flags
        elif order is None and q.args.get("group"):
            # One reducer sorts its keys: GROUP BY output comes out in key order in Hive, and a
            # LIMIT keeps the first keys.
            keys = [exp.Ordered(this=k.copy(), nulls_first=True) for k in udtf.group_keys(q.args["group"])]
            q.set("order", exp.Order(expressions=keys))
        elif order is None and (keys := window_order(q)):
            # Windowing sorts rows by PARTITION BY then ORDER BY on the way to its reducer.
            q.set("order", exp.Order(expressions=keys))
        elif order is not None and not aggregated:
            q.append(
                "expressions", exp.alias_(sqlglot.parse_one("row_number() OVER ()", read="duckdb"), "__rn")
            )
            order.append("expressions", exp.Ordered(this=exp.column("__rn")))
        elif order is not None:
            visible = len(q.expressions) - len(flags)
            for i in range(visible):
                order.append("expressions", exp.Ordered(this=exp.Literal.number(i + 1), nulls_first=True))
        return flags
