"""`tailrace expr`: one expression evaluated from the command line."""

from __future__ import annotations

import argparse
import json

import pytest

from tailrace.cli.commands import expr as expr_command
from tailrace.errors import UsageError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tailrace")
    expr_command.register(parser.add_subparsers())
    args = parser.parse_args(["expr", *argv])
    return args.func(args, None)


def test_bare_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["1.0 / 2"]) == 0
    assert capsys.readouterr().out == ".5\n"


def test_scheduled_start_and_end(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plusDays(@scheduledStartTime, 1)", "--scheduled-start", "2011-05-24T17:10:00"]
    assert run(argv) == 0
    assert capsys.readouterr().out == "2011-05-25T17:10:00\n"
    argv = ["#{@scheduledStartTime}..#{@scheduledEndTime}", "--scheduled-start", "2011-05-24T17:00:00"]
    assert run([*argv, "--scheduled-end", "2011-05-24T18:00:00"]) == 0
    assert capsys.readouterr().out == "2011-05-24T17:00:00..2011-05-24T18:00:00\n"


def test_template_with_sql_quotes_and_hive_variables(capsys: pytest.CaptureFixture[str]) -> None:
    text = "select * from t where dt='#{@scheduledStartTime.format('YYYY-MM-dd')}' and x=${v}"
    assert run([text, "--scheduled-start", "2011-05-24T17:10:00"]) == 0
    assert capsys.readouterr().out == "select * from t where dt='2011-05-24' and x=${v}\n"


def test_set_values_datetimes_lists_and_nested_expressions(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["dayOfYear(myDateTime)", "--set", "myDateTime=2011-05-24T17:10:00"]) == 0
    assert capsys.readouterr().out == "144\n"
    assert run(["'this is ' + myList", "--set", "myList=one", "--set", "myList=two"]) == 0
    assert capsys.readouterr().out == "this is one\nthis is two\n"
    argv = [
        "#{myDir}/part",
        "--set",
        "myDir=s3://b/#{format(myDate,'YYYY')}",
        "--set",
        "myDate=2011-05-24T00:00:00",
    ]
    assert run(argv) == 0
    assert capsys.readouterr().out == "s3://b/2011/part\n"
    assert run(["*myPassword + '!'", "--set", "*myPassword=x=y"]) == 0
    assert capsys.readouterr().out == "x=y!\n"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["makeDate(2011,5,24)", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "expression": "makeDate(2011,5,24)",
        "type": "DateTime",
        "value": "2011-05-24T00:00:00",
        "evaluatedExpression": "2011-05-24T00:00:00",
    }
    assert run(["2 ^ 2", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["type"] == "Double" and doc["value"] == 4.0 and doc["evaluatedExpression"] == "4.0"
    assert run(["#{myL}", "--set", "myL=a", "--set", "myL=b", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["evaluatedExpression"] == ["a", "b"]


def test_errors_show_the_column_with_a_caret(capsys: pytest.CaptureFixture[str]) -> None:
    text = "format(@scheduledStartTime, 'YYYY') + fromat(1)"
    column = text.index("fromat") + 1
    assert run([text, "--scheduled-start", "2011-05-24T00:00:00"]) == 1
    err = capsys.readouterr().err
    assert f"column {column}: unknown function 'fromat'. Did you mean 'format'?" in err
    lines = err.splitlines()
    assert lines[1] == "  " + text
    assert lines[2] == "  " + " " * (column - 1) + "^"


def test_missing_scheduled_time_gives_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["day(@scheduledStartTime)"]) == 1
    err = capsys.readouterr().err
    assert "unknown name '@scheduledStartTime'" in err
    assert "--scheduled-start" in err


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="NAME=VALUE"):
        run(["1", "--set", "novalue"])
    with pytest.raises(UsageError, match="--scheduled-start must be a date-time"):
        run(["1", "--scheduled-start", "yesterday"])


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "--scheduled-start" in out and "--set NAME=VALUE" in out and "--output" in out
