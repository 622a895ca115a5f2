"""parse_template / parse_expression: the #{ } scanner, the grammar, paths, functions, columns."""

from __future__ import annotations

import pytest

from tailrace.expressions import Expr, ExpressionError, parse_expression, parse_template
from tailrace.expressions.syntax import Binary, Call, Literal, Path, Unary


def test_constant_text_is_kept_whole() -> None:
    t = parse_template("s3://bucket/${input1}/a#b{c}d")
    assert t.is_constant
    assert t.parts == ("s3://bucket/${input1}/a#b{c}d",)
    assert t.expressions == []


def test_several_expressions_with_literal_parts_and_columns() -> None:
    text = "a#{x}b #{ y.z }#{1}"
    t = parse_template(text)
    assert not t.is_constant
    assert [e.text for e in t.expressions] == ["x", " y.z ", "1"]
    assert [e.column for e in t.expressions] == [4, 10, 18]
    assert [text[e.column - 1 : e.column - 1 + len(e.text)] for e in t.expressions] == ["x", " y.z ", "1"]
    assert [p if isinstance(p, str) else "E" for p in t.parts] == ["a", "E", "b ", "E", "E"]


def test_expression_inside_single_quoted_sql_with_quoted_pattern() -> None:
    text = "select * from t where dt = '#{@scheduledStartTime.format('YYYY-MM-dd')}' and x = '${v}'"
    t = parse_template(text)
    (expr,) = t.expressions
    assert expr.text == "@scheduledStartTime.format('YYYY-MM-dd')"
    assert t.parts[0] == "select * from t where dt = '"
    assert t.parts[2] == "' and x = '${v}'"
    assert expr.paths() == [("@scheduledStartTime",)]
    assert expr.functions() == [("format", text.index("format") + 1)]


def test_closing_brace_inside_a_string_does_not_end_the_expression() -> None:
    t = parse_template("#{format(t, 'a}b')}!")
    assert t.expressions[0].text == "format(t, 'a}b')"
    assert t.parts[-1] == "!"
    t2 = parse_template('#{format(t, "it\'s }")}')
    assert t2.expressions[0].text == 'format(t, "it\'s }")'


def test_paths_cover_every_name_form() -> None:
    expr = parse_template(
        "#{format(node.@scheduledStartTime, 'x') + input.directoryPath + *myPassword + myList + "
        "output.tableName + node.output.directoryPath + parent.@id + input.directoryPath}"
    ).expressions[0]
    assert expr.paths() == [
        ("node", "@scheduledStartTime"),
        ("input", "directoryPath"),
        ("*myPassword",),
        ("myList",),
        ("output", "tableName"),
        ("node", "output", "directoryPath"),
        ("parent", "@id"),
    ]


def test_functions_lists_both_call_styles_with_columns() -> None:
    text = "#{format(minusDays(@scheduledStartTime, 1), 'YYYY') + @scheduledEndTime.midnight().format('d')}"
    expr = parse_template(text).expressions[0]
    names = expr.functions()
    assert sorted(n for n, _ in names) == ["format", "format", "midnight", "minusDays"]
    for name, column in names:
        assert text[column - 1 : column - 1 + len(name)] == name


def test_method_call_style_puts_the_receiver_first() -> None:
    node = parse_expression("@scheduledStartTime.format('YYYY')").node
    assert isinstance(node, Call) and node.method
    assert node.name == "format"
    assert isinstance(node.args[0], Path) and node.args[0].names == ("@scheduledStartTime",)
    assert isinstance(node.args[1], Literal) and node.args[1].value == "YYYY"


def test_precedence_and_associativity() -> None:
    node = parse_expression("1 + 2 * 3 - 4 / 2").node
    assert isinstance(node, Binary) and node.op == "-"
    assert isinstance(node.left, Binary) and node.left.op == "+"
    pow_node = parse_expression("2 ^ 3 ^ 2").node  # right-associative
    assert isinstance(pow_node, Binary) and isinstance(pow_node.right, Binary)
    neg = parse_expression("-2 ^ 2").node  # minus applies to the power
    assert isinstance(neg, Unary) and isinstance(neg.operand, Binary)


def test_star_is_multiplication_or_a_masked_name_by_position() -> None:
    assert parse_expression("2 *myVar").paths() == [("myVar",)]
    assert parse_expression("*myPassword").paths() == [("*myPassword",)]
    assert parse_expression("2 * *myPassword").paths() == [("*myPassword",)]
    assert parse_expression("'x' + *myPassword").paths() == [("*myPassword",)]


def test_literals() -> None:
    def lit(text: str) -> object:
        node = parse_expression(text).node
        assert isinstance(node, Literal)
        return node.value

    assert lit("42") == 42
    assert lit("1.0") == 1.0 and isinstance(lit("1.0"), float)
    assert lit(".5") == 0.5
    assert lit("1e3") == 1000.0
    assert lit("'single'") == "single"
    assert lit('"double"') == "double"
    assert lit("'it''s'") == "it's"
    assert lit("''") == ""
    assert lit("'C:\\temp'") == "C:\\temp"  # no backslash escapes


def test_template_returns_frozen_exprs() -> None:
    expr = parse_template("#{a}").expressions[0]
    assert isinstance(expr, Expr)
    with pytest.raises(AttributeError):
        expr.text = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("abc #{day(x)", 5, "never closed"),
        ("#{format(x, 'YYYY)}", 13, "unterminated string"),
        ("ok #{}", 6, "empty expression"),
        ("#{   }", 6, "empty expression"),
        ("#{1 +}", 6, "ends where a value was expected"),
        ("#{a b}", 5, "after a complete expression"),
        ("#{format(a,}", 12, "ends where a value was expected"),
        ("#{format(a b)}", 12, "expected ',' or ')'"),
        ("#{(1 + 2}", 9, "expected ')'"),
        ("#{a.}", 5, "expected a field or function name"),
        ("#{@}", 3, "expected a name after '@'"),
        ("#{a ; b}", 5, "unexpected character ';'"),
        ("#{#{a}}", 3, "cannot nest"),
        ("#{[1]}", 3, "brackets"),
        ("#{12abc}", 5, "right after the number"),
        ("#{99999999999999999999}", 3, "does not fit in 64 bits"),
        ("#{@scheduledStartTime(1)}", 3, "runtime field, not a function"),
        ("x\n#{a +* b}", 8, "expected a value"),
    ],
)
def test_syntax_errors_have_columns(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_template(text)
    err = info.value
    assert fragment in err.detail
    assert err.column == column
    assert f"column {column}" in str(err)
    assert err.text == text


def test_error_located_at_object_and_field() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_template("s3://#{format(@scheduledStartTime,}")
    located = info.value.at("MyDataNode", "directoryPath")
    assert located.column == info.value.column
    assert str(located).startswith("object 'MyDataNode', field 'directoryPath', column 35: ")
    assert located.caret() == "  s3://#{format(@scheduledStartTime,}\n                                    ^"
    # at() again with None keeps what is known
    assert str(located.at(None, None)) == str(located)


def test_caret_on_a_multi_line_field() -> None:
    text = "line one\n  select '#{bad(}'"
    with pytest.raises(ExpressionError) as info:
        parse_template(text)
    assert info.value.caret(indent="") == "  select '#{bad(}'\n                ^"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("-" * 5000 + "1")
