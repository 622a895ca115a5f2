"""sqlglot's Hive dialect with the few changes the engine needs to keep Hive's meaning.

get_json_object keeps its path as the literal text: sqlglot's JSON path parser reads
`$.fb:testid` as two keys and fails on `$..x`, and Hive's path grammar is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.hive import Hive
from sqlglot.parser import Parser
from sqlglot.parsers.hive import HiveParser

from tailrace.engines.hive import javatime


def _anonymous(name: str) -> Callable[[list[Any]], exp.Expr]:
    def build(args: list[Any]) -> exp.Expr:
        return exp.Anonymous(this=name, expressions=args)

    return build


def _pattern_kept(name: str) -> Callable[..., exp.Expr]:
    """sqlglot's own builder, with the SimpleDateFormat pattern kept as written."""
    original = Hive.Parser.FUNCTIONS[name]

    def build(args: list[Any], *rest: Any, **named: Any) -> exp.Expr:
        return javatime.keep_pattern(original(args, *rest, **named), args)

    return build


class TailraceHive(Hive):
    class Parser(HiveParser):
        FUNCTIONS: ClassVar[dict[str, Callable[..., Any]]] = {
            **Hive.Parser.FUNCTIONS,
            "GET_JSON_OBJECT": _anonymous("get_json_object"),
            # Hive's date_format takes SimpleDateFormat letters, not strftime's.
            "DATE_FORMAT": _anonymous("date_format"),
            # variance is the population variance in Hive (var_samp is the sample one).
            "VARIANCE": _anonymous("variance"),
            "LOG10": _anonymous("log10"),
            "LOG2": _anonymous("log2"),
            "SUBSTRING_INDEX": _anonymous("substring_index"),
            "FROM_UNIXTIME": _pattern_kept("FROM_UNIXTIME"),
            "UNIX_TIMESTAMP": _pattern_kept("UNIX_TIMESTAMP"),
        }

        def _parse_types(
            self,
            check_func: bool = False,
            schema: bool = False,
            allow_identifiers: bool = True,
            with_collation: bool = False,
        ) -> exp.Expr | None:
            # sqlglot's Hive drops the length of CAST(x AS VARCHAR(n)) as Spark does; Hive's
            # HiveVarchar keeps the first n characters, so the length stays (CHAR(n) still goes).
            this = Parser._parse_types(
                self,
                check_func=check_func,
                schema=schema,
                allow_identifiers=allow_identifiers,
                with_collation=with_collation,
            )
            if this is None or schema:
                return this

            def _char_to_text(node: exp.Expr) -> exp.Expr:
                if isinstance(node, exp.DataType) and node.is_type("char"):
                    node.set("this", exp.DType.TEXT)
                    node.set("expressions", None)
                return node

            return this.transform(_char_to_text, copy=False)
