"""Statements around the queries: CTAS, SHOW, DESCRIBE, USE, SELECT column names."""

from __future__ import annotations

from hive_helpers import write_text

from tailrace.cli.main import run
from tailrace.services import build_services


def test_create_table_as_select_infers_hive_types(hive, data_home):
    write_text(data_home / "s" / "f", ["a\t1", "b\t2"])
    result = hive.run_script(
        f"""CREATE EXTERNAL TABLE s (k string, v int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t'
        LOCATION '{data_home / "s"}';
        CREATE TABLE totals AS SELECT k, sum(v) AS total, avg(v) AS mean FROM s GROUP BY k;
        DESCRIBE totals; SHOW TABLES; SELECT * FROM totals"""
    )
    assert result.statements[1].rows_written == 2
    assert result.statements[2].select_rows == [
        ("k", "string", ""),
        ("total", "bigint", ""),
        ("mean", "double", ""),
    ]
    assert result.statements[3].select_rows == [("s",), ("totals",)]
    assert result.statements[4].select_rows == [("a", "1", "1.0"), ("b", "2", "2.0")]
    assert (data_home / "warehouse" / "totals" / "000000_0").read_text() == "a\x011\x011.0\nb\x012\x012.0\n"


def test_databases_qualify_table_names(hive, data_home):
    write_text(data_home / "x" / "f", ["1"])
    result = hive.run_script(
        f"""CREATE DATABASE IF NOT EXISTS logs; USE logs;
        CREATE EXTERNAL TABLE t (a int) LOCATION '{data_home / "x"}'; USE default;
        SELECT a FROM logs.t"""
    )
    assert result.statements[-1].select_rows == [("1",)]
    assert hive.metastore.get_table("logs", "t") is not None


def test_select_names_columns_like_hive(hive, data_home):
    write_text(data_home / "n" / "f", ["x"])
    hive.run_script(f"CREATE EXTERNAL TABLE n (a string) LOCATION '{data_home / 'n'}'")
    assert hive.run_script("SELECT a, upper(a), a AS b FROM n").statements[0].columns == ["a", "_c1", "b"]


def test_cli_select_prints_tab_separated_with_null_and_header(home, capsys):
    write_text(home / "d" / "f", ["x\t\\N"])
    assert (
        run(
            [
                "hive",
                "-S",
                "-e",
                f"CREATE EXTERNAL TABLE d (a string, b string) ROW FORMAT DELIMITED "
                f"FIELDS TERMINATED BY '\\t' LOCATION '{home / 'd'}'",
            ],
            build_services,
        )
        == 0
    )
    code = run(
        ["hive", "--hiveconf", "hive.cli.print.header=true", "-e", "SELECT a, b FROM d"], build_services
    )
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == "a\tb\nx\tNULL\n"
    assert "OK  SELECT: 1 rows" in captured.err


def test_cli_verbose_echoes_statements_and_set_prints_values(home, capsys):
    assert run(["hive", "-v", "-e", "SET a.b=c; SET a.b", "-d", "X=1"], build_services) == 0
    err = capsys.readouterr().err
    assert "SET a.b=c" in err and "a.b=c\n" in err


def test_insert_overwrite_directory_and_multi_insert(hive, data_home):
    write_text(data_home / "s" / "f", ["a\t1", "b\t2", "a\t3"])
    result = hive.run_script(
        f"""CREATE EXTERNAL TABLE s (k string, v int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t'
        LOCATION '{data_home / "s"}';
        INSERT OVERWRITE DIRECTORY 's3://out/plain' SELECT k, v * 1.5 FROM s ORDER BY v;
        INSERT OVERWRITE LOCAL DIRECTORY '{data_home / "local"}' ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
          SELECT k, count(*) FROM s GROUP BY k;
        CREATE TABLE ka (k string); CREATE TABLE kb (k string, n bigint);
        FROM s INSERT OVERWRITE TABLE ka SELECT k WHERE v > 1
               INSERT OVERWRITE TABLE kb SELECT k, sum(v) GROUP BY k"""
    )
    assert (data_home / "s3" / "out" / "plain" / "000000_0").read_text() == "a\x011.5\nb\x013.0\na\x014.5\n"
    assert (data_home / "local" / "000000_0").read_text() == "a,2\nb,1\n"
    multi = result.statements[-1]
    assert (multi.kind, multi.table, multi.rows_written) == ("INSERT (multi)", "ka, kb", 4)
    assert (data_home / "warehouse" / "ka" / "000000_0").read_text() == "b\na\n"
    assert (data_home / "warehouse" / "kb" / "000000_0").read_text() == "a\x014\nb\x012\n"
