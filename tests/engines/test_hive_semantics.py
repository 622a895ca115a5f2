"""Hive's value semantics on DuckDB: text tables, substr, casts, JSON functions, output text."""

from __future__ import annotations

import itertools

import pytest
from hive_helpers import rows_of, write_text
from hive_reference import hive_substr

from tailrace.engines.hive.serde import java_double


def table(hive, data_home, name, columns, lines, *, delim="\\t"):
    write_text(data_home / "in" / name / "part-0", lines)
    hive.run_script(
        f"CREATE EXTERNAL TABLE {name} ({columns}) ROW FORMAT DELIMITED FIELDS TERMINATED BY '{delim}' "
        f"LOCATION '{data_home / 'in' / name}'"
    )


def select(hive, sql):
    return hive.run_script(sql).statements[-1].select_rows


def test_delimited_lines_short_long_and_null_marker(hive, data_home):
    table(
        hive,
        data_home,
        "t",
        "a string, b string, c string",
        ["1\t2\t3", "1\t2", "x", "1\t2\t3\t4\t5", "\\N\t\t3"],
    )
    result = hive.run_script("SELECT a, b, c FROM t")
    assert result.statements[0].select_rows == [
        ("1", "2", "3"),
        ("1", "2", None),
        ("x", None, None),
        ("1", "2", "3"),
        (None, "", "3"),
    ]
    assert result.malformed_lines == 2


def test_values_that_do_not_parse_as_the_column_type_are_null(hive, data_home):
    table(
        hive,
        data_home,
        "typed",
        "i int, b bigint, d double, f boolean",
        [
            "1\t-5\t1.5\ttrue",
            "x\t12.5\tnope\tyes",
            "+7\t99999999999999999999\t1e3\tFALSE",
            " 3\t0x10\t\tTrue",
        ],
    )
    assert select(hive, "SELECT i, b, d, f FROM typed") == [
        ("1", "-5", "1.5", "true"),
        (None, "12", None, None),
        ("7", None, "1000.0", "false"),
        (None, None, None, "true"),
    ]


@pytest.mark.parametrize("length", [None, -1, 0, 1, 3, 10, 100])
def test_substr_follows_udfsubstr_make_index(hive, data_home, length):
    words = ["hello", "a", "2012-12-21T04:22:02+09:00"]
    table(hive, data_home, "w", "s string", words)
    positions = [-30, -5, -3, -1, 0, 1, 2, 5, 6, 30]
    exprs = [f"substr(s, {p})" if length is None else f"substr(s, {p}, {length})" for p in positions]
    rows = select(hive, f"SELECT {', '.join(exprs)} FROM w")
    for word, row in zip(words, rows, strict=True):
        want = tuple(
            hive_substr(word, p) if length is None else hive_substr(word, p, length) for p in positions
        )
        assert row == want, word


def test_substr_with_column_positions_uses_the_same_rules(hive, data_home):
    cases = list(itertools.product(["hello", "ab"], [-6, -2, 0, 1, 3, 9], [-1, 0, 2, 7]))
    table(hive, data_home, "sp", "s string, p int, l int", [f"{s}\t{p}\t{n}" for s, p, n in cases])
    rows = select(hive, "SELECT substr(s, p, l), substring(s, p) FROM sp")
    assert rows == [(hive_substr(s, p, n), hive_substr(s, p)) for s, p, n in cases]


def test_json_functions_regexp_and_time(hive, data_home):
    table(
        hive,
        data_home,
        "j",
        "j string, ts bigint, s string",
        [
            '{"a":{"b":[10,{"c":"x"}]},"n":1.50,"t":true}\t0\t2012-12-21 04:22:02',
            "{broken\t1356063722\t21/Dec/2012:04:22:02",
            "\\N\t\\N\tGET /index.html HTTP/1.1",
        ],
    )
    rows = select(
        hive,
        "SELECT get_json_object(j, '$.a.b[1].c'), get_json_object(j, '$.a'), get_json_object(j, '$.n'), "
        "from_unixtime(ts), from_unixtime(ts, 'yyyyMMdd'), unix_timestamp(s), "
        "unix_timestamp(s, 'dd/MMM/yyyy:HH:mm:ss'), regexp_extract(s, '^(\\\\w+) (/[^ ]*)', 2), "
        "regexp_extract(s, 'zzz(.)', 1) FROM j",
    )
    assert rows == [
        ("x", '{"b":[10,{"c":"x"}]}', "1.5", "1970-01-01 00:00:00", "19700101", "1356063722", None, "", ""),
        (None, None, None, "2012-12-21 04:22:02", "20121221", None, "1356063722", "", ""),
        (None, None, None, None, None, None, None, "/index.html", ""),
    ]


def test_lateral_view_json_tuple_and_explode(hive, data_home):
    table(
        hive,
        data_home,
        "e",
        "k string, j string, tags string",
        ['1\t{"a":"x","b":2}\tp,q', "2\tnot json\t", "3\t\\N\tr"],
    )
    rows = select(hive, "SELECT k, v.a, v.b FROM e LATERAL VIEW json_tuple(j, 'a', 'b') v AS a, b ORDER BY k")
    assert rows == [("1", "x", "2"), ("2", None, None), ("3", None, None)]
    result = hive.run_script("SELECT k, a FROM e LATERAL VIEW json_tuple(e.j, 'a') v AS a")
    assert result.malformed_json == 1
    rows = select(hive, "SELECT k, t FROM e LATERAL VIEW explode(split(tags, ',')) x AS t ORDER BY k, t")
    assert rows == [("1", "p"), ("1", "q"), ("2", ""), ("3", "r")]
    rows = select(hive, "SELECT * FROM e LATERAL VIEW json_tuple(j, 'a') v AS a WHERE k = 1")
    assert rows == [("1", '{"a":"x","b":2}', "p,q", "x")]


def test_strings_compare_with_numbers_as_doubles(hive, data_home):
    table(hive, data_home, "c", "code string", ["404", "200", "-", "304"])
    assert select(hive, "SELECT code FROM c WHERE code >= 300 ORDER BY code") == [("304",), ("404",)]
    assert select(
        hive, "SELECT sum(code), count(code), cast(code AS int) + 1 FROM c GROUP BY code ORDER BY code"
    )[0] == (
        None,
        "1",
        None,
    )


def test_insert_writes_hive_text_for_every_type(hive, data_home):
    table(hive, data_home, "src", "a string", ["1", "2"])
    hive.run_script(
        f"""CREATE TABLE out (s string, i int, b bigint, d double, f boolean, dec decimal(10,3), n string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION '{data_home / "out"}';
        INSERT OVERWRITE TABLE out SELECT concat('v', a), a + 1, 12345678901, 1e7 / a, a = '1',
          CAST('1.500' AS decimal(10,3)), NULL FROM src ORDER BY a"""
    )
    assert (data_home / "out" / "000000_0").read_text() == (
        "v1,2,12345678901,1.0E7,true,1.5,\\N\nv2,3,12345678901,5000000.0,false,1.5,\\N\n"
    )


def test_insert_converts_strings_to_the_column_type_like_hive(hive, data_home):
    table(hive, data_home, "raw", "a string, b string", ["5\t1.5", "-\tx", "12.5\t-0", "7\t"])
    hive.run_script(
        f"""CREATE TABLE conv (i bigint, d double, s string) LOCATION '{data_home / "conv"}';
        INSERT OVERWRITE TABLE conv SELECT a, b, b FROM raw"""
    )
    assert rows_of(data_home / "conv" / "000000_0") == [
        ["5\x011.5\x011.5"],
        ["\\N\x01\\N\x01x"],
        ["12\x01-0.0\x01-0"],
        ["7\x01\\N\x01"],
    ]


@pytest.mark.parametrize("value", [0.1, 1e7, 1e-3, 9.99e-4, 123456.789, 1.5e-5, 1e20, -2.5, 100.0, 0.0])
def test_doubles_print_as_java_does(value):
    expected = {
        0.1: "0.1",
        1e7: "1.0E7",
        1e-3: "0.001",
        9.99e-4: "9.99E-4",
        123456.789: "123456.789",
        1.5e-5: "1.5E-5",
        1e20: "1.0E20",
        -2.5: "-2.5",
        100.0: "100.0",
        0.0: "0.0",
    }
    assert java_double(value) == expected[value]


def test_group_by_without_order_by_comes_out_sorted_by_key(hive, data_home):
    table(hive, data_home, "g", "k string", ["b", "a", "\\N", "b", "c", "a"])
    assert select(hive, "SELECT k, count(*) FROM g GROUP BY k") == [
        (None, "1"),
        ("a", "2"),
        ("b", "2"),
        ("c", "1"),
    ]


def test_set_and_hivevar_substitution(hive, data_home):
    table(hive, data_home, "v", "k string", ["x", "y"])
    result = hive.run_script(
        "SET hivevar:want=y; SET tbl=v; SELECT k FROM ${hiveconf:tbl} WHERE k = '${hivevar:want}' "
        "OR k = '${other}'",
        {"other": "x"},
    )
    assert result.statements[-1].select_rows == [("x",), ("y",)]


def test_lines_that_are_not_utf8_are_dropped_and_counted_not_fatal(hive, data_home):
    folder = data_home / "bin"
    folder.mkdir()
    (folder / "f").write_bytes(b"ok\t1\nbad\xff\xfe\t2\nfine\t3\n")
    messages: list[str] = []
    result = hive.run_script(
        f"CREATE EXTERNAL TABLE bin (a string, b string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
        f"LOCATION '{folder}'; SELECT a, b FROM bin; SELECT count(*) FROM bin",
        echo=messages.append,
    )
    assert result.statements[1].select_rows == [("ok", "1"), ("fine", "3")]
    assert result.statements[1].malformed.dropped_lines == 1
    assert result.dropped_lines == 1
    assert any("not utf-8" in m.lower() for m in messages)


def test_every_hadoop_text_codec_we_know_is_read(hive, data_home):
    import bz2
    import gzip
    import zlib

    folder = data_home / "codecs"
    folder.mkdir()
    (folder / "a.gz").write_bytes(gzip.compress(b"gz\n"))
    (folder / "b.bz2").write_bytes(bz2.compress(b"bz2\n"))
    (folder / "c.deflate").write_bytes(zlib.compress(b"deflate\n"))
    (folder / "d").write_bytes(b"plain\n")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "empty.gz").write_bytes(b"")
    rows = hive.run_script(
        f"CREATE EXTERNAL TABLE codecs (a string) LOCATION '{folder}'; SELECT a FROM codecs"
    )
    assert rows.statements[-1].select_rows == [("gz",), ("bz2",), ("deflate",), ("plain",)]


def test_date_functions_read_the_date_prefix_of_strings(hive, data_home):
    table(hive, data_home, "d", "dt string", ["2012-12-21T04:22:02+09:00", "2012-12-31 23:59:59", "junk"])
    rows = select(
        hive,
        "SELECT to_date(dt), year(dt), month(dt), day(dt), hour(dt), date_add(dt, 1), date_sub(dt, 1), "
        "datediff(dt, '2012-12-01'), date_format(dt, 'yyyy/MM') FROM d",
    )
    assert rows == [
        ("2012-12-21", "2012", "12", "21", "4", "2012-12-22", "2012-12-20", "20", "2012/12"),
        ("2012-12-31", "2012", "12", "31", "23", "2013-01-01", "2012-12-30", "30", "2012/12"),
        (None,) * 9,
    ]


def test_decimal_literals_are_doubles_as_in_hive(hive, data_home):
    table(hive, data_home, "n", "v int", ["2"])
    assert select(hive, "SELECT v * 1.5, v / 4, 1e3 + v FROM n") == [("3.0", "0.5", "1002.0")]
