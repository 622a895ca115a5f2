"""A table read once per script, and ORDER BY ties ordered by its row id (tailrace.engines.hive.sources)."""

from __future__ import annotations

import json
import random

from hive_helpers import write_text

from tailrace.engines.hive.sources import SourceTables


def _kept_tables(hive) -> list[str]:
    rows = hive.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_\\_%' ESCAPE '\\' AND table_name <> '__result'"
    ).fetchall()
    return sorted(r[0] for r in rows)


def _logs(data_home, name: str, lines: list[str]) -> None:
    for i in range(0, len(lines), len(lines) // 3 + 1):
        write_text(data_home / "in" / name / f"part-{i:06d}", lines[i : i + len(lines) // 3 + 1])


def test_ties_keep_input_order_over_json_tuple_on_two_threads(hive, data_home):
    rng = random.Random(3)
    # Few distinct keys, many rows: almost every row ties with others on the ORDER BY key.
    lines = [f"k{rng.randint(0, 4)}\t" + json.dumps({"n": str(i), "h": f"h{i % 7}"}) for i in range(30000)]
    lines[5] = "k1"  # a short line
    lines[9] = "k2\t{broken"
    _logs(data_home, "logs", lines)
    hive.run_script(
        f"CREATE EXTERNAL TABLE logs (k string, j string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{data_home / 'in' / 'logs'}'"
    )
    seen: list[list[str]] = []
    result = hive.run_script(
        "SELECT k, n, h FROM logs LATERAL VIEW json_tuple(logs.j, 'n', 'h') t AS n, h ORDER BY k;"
        "SELECT k, count(*) FROM logs GROUP BY k",
        on_statement=lambda _res: seen.append(_kept_tables(hive)),
    )
    rows = result.statements[0].select_rows
    expected = []
    for i, line in enumerate(lines):
        k, _, j = line.partition("\t")
        try:
            doc = json.loads(j) if j else None
        except ValueError:
            doc = None
        expected.append((k, i, (k, doc["n"] if doc else None, doc["h"] if doc else None)))
    assert rows == [row for _, _, row in sorted(expected, key=lambda e: (e[0], e[1]))]
    assert result.statements[0].malformed.short_lines == 1
    assert result.statements[0].malformed.bad_json == 1
    assert result.statements[1].malformed.short_lines == 1
    # The first statement kept its FROM item (the files read, JSON extracted) in a table; the
    # second read it; the script's end dropped it.
    assert seen == [["__kept_1"], ["__kept_1"]]
    assert _kept_tables(hive) == []


def test_a_table_written_between_two_reads_is_read_again(hive, data_home):
    write_text(data_home / "in" / "t" / "part-0", ["b\t1", "a\t2", "b\t3"])
    hive.run_script(
        "CREATE TABLE t (k string, v string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{data_home / 'in' / 't'}'"
    )
    result = hive.run_script(
        "SELECT k, v FROM t ORDER BY k;"
        "SELECT k, v FROM (SELECT * FROM t) s ORDER BY k;"
        "INSERT INTO TABLE t SELECT 'a', '4' FROM t LIMIT 1;"
        "SELECT k, v FROM t ORDER BY k;"
        "SELECT * FROM t ORDER BY k;"
        "SELECT k, v FROM (SELECT * FROM t) s ORDER BY k"
    )
    before = [("a", "2"), ("b", "1"), ("b", "3")]
    assert [s.select_rows for s in result.statements[:2]] == [before, before]
    # The added file (000000_0) comes before part-0 in name order, so its row is read first.
    after = [("a", "4"), ("a", "2"), ("b", "1"), ("b", "3")]
    assert result.statements[3].select_rows == after
    # `SELECT *` keeps row_number(): the row id column never shows.
    assert result.statements[4].select_rows == after
    assert result.statements[5].select_rows == after


def test_queries_where_rows_are_not_one_per_input_row_keep_row_number(hive, data_home):
    sources = SourceTables(hive.con)
    hive.con.execute("CREATE TABLE plain (a INT)")
    sources.define("__t_default_x", "SELECT 1 AS a, false AS __short", [], lenient=False)
    tie = "ROW_NUMBER() OVER () AS __rn"
    one = f'SELECT a, {tie} FROM "__t_default_x" AS x ORDER BY a, __rn'
    assert sources.rewrite(one, stable=True) == (
        'SELECT a, "x".__row AS __rn FROM (SELECT *, rowid AS __row FROM "__t_default_x__m") AS x '
        "ORDER BY a, __rn"
    )
    sub = f'SELECT a, {tie} FROM (SELECT a FROM "__t_default_x" AS x WHERE a > 0) AS x ORDER BY a, __rn'
    assert sources.rewrite(sub, stable=True) == (
        'SELECT a, "x".__row AS __rn FROM (SELECT *, rowid AS __row FROM "__kept_1") AS x ORDER BY a, __rn'
    )
    # A later statement with the same FROM item reads the kept rows.
    assert sources.rewrite(sub.replace(f", {tie}", "").replace(", __rn", ""), stable=True) == (
        'SELECT a FROM "__kept_1" AS x ORDER BY a'
    )
    refused = [
        f'SELECT x.a, {tie} FROM "__t_default_x" AS x JOIN plain AS p ON x.a = p.a ORDER BY 1, __rn',
        f'SELECT a, {tie} FROM (SELECT *, unnest([1, 2]) AS u FROM "__t_default_x" AS x) AS x ORDER BY a, __rn',
        f'SELECT a, {tie} FROM (SELECT * FROM "__t_default_x" AS x LIMIT 1) AS x ORDER BY a, __rn',
        f'SELECT *, {tie} FROM "__t_default_x" AS x ORDER BY a, __rn',
        f"SELECT a, {tie} FROM plain AS x ORDER BY a, __rn",
        f'SELECT a, {tie} FROM "__t_default_x" AS x WHERE a IN (SELECT a FROM "__t_default_x") ORDER BY a, __rn',
    ]
    for sql in refused:
        assert sources.rewrite(sql, stable=True) == sql, sql
    assert sources.rewrite(one, stable=False) == one


def test_create_view_with_order_by_reads_no_rows(hive, data_home):
    write_text(data_home / "in" / "t" / "part-0", ["b\t1", "a\t2"])
    hive.run_script(
        "CREATE EXTERNAL TABLE t (k string, v string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{data_home / 'in' / 't'}'"
    )
    seen: list[list[str]] = []
    result = hive.run_script(
        "CREATE VIEW ordered AS SELECT k, v FROM t ORDER BY k; SELECT k FROM ordered",
        on_statement=lambda _res: seen.append(_kept_tables(hive)),
    )
    assert seen[0] == []  # only the view's columns were needed
    assert result.statements[1].select_rows == [("a",), ("b",)]


def test_the_kept_table_leaves_out_the_raw_json_and_a_statement_that_reads_it_still_gets_it(hive, data_home):
    lines = [f"k{i % 3}\t" + json.dumps({"n": str(i)}) for i in range(50)]
    _logs(data_home, "raw", lines)
    hive.run_script(
        f"CREATE EXTERNAL TABLE raw (k string, j string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{data_home / 'in' / 'raw'}'"
    )
    kept_columns: list[list[str]] = []

    def look(_res) -> None:
        if "__kept_1" in _kept_tables(hive):
            kept_columns.append([c.lower() for c in hive.con.sql("FROM __kept_1").columns])

    lateral = "FROM raw LATERAL VIEW json_tuple(raw.j, 'n') t AS n"
    result = hive.run_script(
        f"SELECT k, n {lateral} ORDER BY k;"  # keeps the FROM item, without j
        f"SELECT n, j {lateral} WHERE k = 'k1' ORDER BY n;"  # names j: reads the files again
        f"SELECT * {lateral} WHERE k = 'k2' ORDER BY n;"  # a `*`: every column, j too
        f"SELECT count(*), max(n) {lateral}",  # neither: reads the kept table
        on_statement=look,
    )
    assert kept_columns and all("j" not in cols and "n" in cols for cols in kept_columns)
    docs = [(line.split("\t")[0], line.split("\t")[1]) for line in lines]
    by_n = sorted(((json.loads(j)["n"], j) for k, j in docs if k == "k1"))
    assert result.statements[1].select_rows == [(n, j) for n, j in by_n]
    star = sorted(((k, j, json.loads(j)["n"]) for k, j in docs if k == "k2"), key=lambda r: r[2])
    assert result.statements[2].select_rows == star
    assert result.statements[3].select_rows == [("50", max(str(i) for i in range(50)))]
