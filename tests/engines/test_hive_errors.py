"""Bad scripts and bad input: errors name the file, statement, line and column; nothing is damaged."""

from __future__ import annotations

import pytest
from hive_helpers import SEED, write_text

from tailrace.cli.main import run
from tailrace.engines.hive import HiveError
from tailrace.services import build_services

SCRIPT = """SET x=1;
CREATE EXTERNAL TABLE t (dt string, json string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION '{loc}';

-- the lateral view below names a column that does not exist
SELECT dt,
       hots
FROM t;
"""


def failure(hive, text, **kw) -> HiveError:
    with pytest.raises(HiveError) as info:
        hive.run_script(text, source="job.q", **kw)
    return info.value


def test_unknown_column_points_at_it(hive, data_home):
    write_text(data_home / "t" / "f", ["a\tb"])
    err = failure(hive, SCRIPT.format(loc=data_home / "t"))
    assert (err.statement, err.line, err.column) == (3, 7, 8)
    assert str(err).startswith("job.q:7:8: statement 3: Invalid table alias or column reference 'hots'")
    assert err.partial is not None and len(err.partial.statements) == 2


def test_syntax_error_points_at_the_token(hive):
    err = failure(hive, "SELECT 1;\n\nSELECT a\n  FROM t\n WHERE a = = 2;")
    assert (err.statement, err.line, err.column) == (2, 5, 12)
    assert "cannot recognize input near '='" in str(err)  # Hive's ParseException wording


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELECT a * FROM t", "'*' has no expression on its right"),
        ("SELECT a FROM t WHERE a > AND a = 'x'", "'>' has no expression on its right"),
        ("SELECT count(a FROM t", "missing ')'"),
        ("SELECT a FROM t WHERE", "an incomplete WHERE"),
        ("SELECT a FROM t ORDER BY", "an incomplete ORDER BY"),
        ("SELECT a b c FROM t", "not expected here (a missing comma or keyword?)"),
    ],
)
def test_parse_errors_say_what_is_wrong_in_hive_terms(hive, sql, says):
    """Not the SQL library's words ("incomplete Mul", "Invalid expression / Unexpected token")."""
    message = str(failure(hive, sql))
    assert says in message and "cannot recognize input near" in message
    for library_words in ("Mul", "GT", "Required keyword", "<class", "Invalid expression", "Expecting"):
        assert library_words not in message


def test_an_unterminated_string_is_one_located_message_from_the_cli(home, capsys):
    script = home.parent / "bad.q"
    script.write_text("SELECT 1;\nSELECT 'oops\nFROM t;\n")
    assert run(["hive", "-f", str(script)], build_services) == 1
    err = capsys.readouterr().err
    assert f"{script}:2:8: statement 2: unterminated string: the ' here is never closed" in err
    assert "Traceback" not in err


def test_unknown_table_suggests_a_name(hive, data_home):
    write_text(data_home / "t" / "f", ["a\tb"])
    hive.run_script(f"CREATE EXTERNAL TABLE fluentLog (dt string) LOCATION '{data_home / 't'}'")
    err = failure(hive, "SELECT *\nFROM fluentLgo")
    assert (err.line, err.column) == (2, 6)
    assert "Table not found 'fluentLgo'. Did you mean 'fluentlog'?" in str(err)


def test_positions_survive_variable_substitution(hive, data_home):
    write_text(data_home / "t" / "f", ["a"])
    hive.run_script(f"CREATE EXTERNAL TABLE t (a string) LOCATION '{data_home / 't'}'")
    text = "SELECT '${LONG_VALUE}', ${COL}, nope\nFROM t"
    err = failure(hive, text, variables={"LONG_VALUE": "x" * 50, "COL": "a"})
    assert (err.line, err.column) == (1, text.index("nope") + 1)


def test_missing_input_folder_names_the_location_and_leaves_outputs(hive, data_home):
    out = data_home / "s3" / "memorycraft-log-archive" / "archives" / "20121221"
    write_text(out / "000000_0", ["old"])
    err = failure(hive, SEED.read_text(), variables={"DATE": "20121221"})
    assert err.statement == 3 and err.line == 13 and err.column == 2
    assert "input folder s3://memorycraft-log/logs/20121221 of table fluentlog does not exist" in str(err)
    assert "no objects under s3://memorycraft-log/logs/20121221" in str(err)
    assert str(data_home) not in str(err)  # the server's own folders stay out of an owner's log
    assert (out / "000000_0").read_text() == "old\n"


def test_column_count_mismatch_on_insert(hive, data_home):
    write_text(data_home / "t" / "f", ["a\tb"])
    hive.run_script(
        f"CREATE EXTERNAL TABLE s (a string, b string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{data_home / 't'}'; CREATE TABLE d (a string)"
    )
    err = failure(hive, "INSERT OVERWRITE TABLE d SELECT a, b FROM s")
    assert "table has 1 columns, but query has 2 columns" in str(err)
    assert err.column == 24


def test_unsupported_statement_is_refused_clearly(hive):
    # A managed table's rows are tailrace's own (kept as text); files at a LOCATION are not.
    err = failure(hive, "CREATE TABLE x (a string) STORED AS ORC LOCATION '/tmp/x'")
    assert "STORED AS ORC is not supported" in str(err)


def test_cli_prints_failed_line_and_exits_1(home, capsys):
    script = home.parent / "bad.q"
    script.write_text("SELECT 1;\nSELECT a FROM nowhere;\nSELECT 2;\n")
    code = run(["hive", "-f", str(script)], build_services)
    captured = capsys.readouterr()
    assert code == 1
    assert f"FAILED: {script}:2:15: statement 2: Table not found 'nowhere'" in captured.err
    assert captured.out == "1\n"  # statement 3 never ran


def test_cli_rejects_bad_define(home, capsys):
    assert run(["hive", "-e", "SELECT 1", "-d", "NOEQUALS"], build_services) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("sql", "column", "message"),
    [
        (
            "SELECT j.hots FROM t LATERAL VIEW json_tuple(json, 'host') j AS host",
            10,
            "column reference 'hots'",
        ),
        (
            "SELECT a.dt FROM t a JOIN t b ON a.dt = b.dt WHERE dt = '1'",
            52,
            "Ambiguous column reference 'dt'",
        ),
        ("SELECT dt, count(*) FROM t GROUP BY json", 8, "Expression not in GROUP BY key 'dt'"),
        ("SELECT nosuchfn(dt) FROM t", 8, "Invalid function 'nosuchfn'"),
    ],
)
def test_engine_errors_point_at_the_name(hive, data_home, sql, column, message):
    write_text(data_home / "t" / "f", ['x\t{"host":"h"}'])
    hive.run_script(
        f"CREATE EXTERNAL TABLE t (dt string, json string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{data_home / 't'}'"
    )
    err = failure(hive, sql)
    assert (err.line, err.column) == (1, column)
    assert message in str(err)
