"""The Hive compatibility corpus: queries with the rows the Hive Language Manual says they give.

Each file in hive_corpus/ holds cases of one area:

    === case name
    <one or more statements; the last one's rows are compared>
    --- rows            (tab-separated, NULL for NULL; in order)
    --- rows unordered  (compared as a multiset)
    --- error <text>    (the script fails with a located error containing <text>)

The tables every case can read are made by `tables` below (small, fixed, written here).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hive_helpers import write_text

from tailrace.engines.hive import HiveError

CORPUS = Path(__file__).parent / "hive_corpus"

COMPLEX_FORMAT = "COLLECTION ITEMS TERMINATED BY ',' MAP KEYS TERMINATED BY ':'"
TABLES: dict[str, tuple[str, list[str]]] = {
    # array/map/struct columns, written as Hive's LazySimpleSerDe lays them out.
    "complex": (
        "id int, tags array<string>, attrs map<string,int>, who struct<name:string,age:int>",
        ["1\ta,b\tx:1,y:2\tann,30", "2\tc\tz:\\N\tbob", "3\t\\N\t\\N\t\\N"],
    ),
    # Like Hive's own `src`: both columns are strings.
    "src": (
        "key string, value string",
        ["238\tval_238", "86\tval_86", "311\tval_311", "27\tval_27", "86\tval_86"],
    ),
    # Like Hive's `src1`: a few keys shared with src, and empty strings (not NULLs) in both columns.
    "src1": (
        "key string, value string",
        ["238\tval_238", "\t", "311\tval_311", "\tval_27", "66\tval_66", "86\t", "98\tval_98"],
    ),
    "nums": ("a int, b int, s string", ["1\t10\tx", "2\t\\N\ty", "\\N\t30\tx", "4\t40\t\\N", "1\t10\tx"]),
    "json": (
        "id int, j string",
        [
            '1\t{"a":[{"b":[25,26]},{"b":[27]}],"fb:testid":"t1","s":"x","n":null,"o":{"k":1}}',
            '2\t[{"x":1},{"x":2}]',
            "3\tnot json",
            "4\t\\N",
        ],
    ),
    "dates": (
        "d string, ts string",
        ["2012-12-21\t2012-12-21 04:22:02.123", "1999-01-31\t1999-01-31 23:59:59"],
    ),
}


@dataclass
class Case:
    file: str
    name: str
    script: str
    kind: str  # rows | unordered | error
    expected: list[tuple[str | None, ...]]
    error: str


def _row(line: str) -> tuple[str | None, ...]:
    return tuple(None if v == "NULL" else v for v in line.split("\t"))


def load() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for block in re.split(r"^=== ", text, flags=re.M)[1:]:
            name, _, body = block.partition("\n")
            script, _, tail = body.partition("\n--- ")
            head, _, rows = tail.partition("\n")
            kind = "error" if head.startswith("error") else "unordered" if "unordered" in head else "rows"
            expected = [] if kind == "error" else [_row(x) for x in rows.splitlines() if x.strip()]
            error = head[len("error") :].strip() if kind == "error" else ""
            cases.append(Case(path.stem, name.strip(), script.strip(), kind, expected, error))
    return cases


CASES = load()


@pytest.fixture
def tables(engine_name, request, data_home):
    # The same corpus on both engines; Spark cases share the session's cluster (conftest).
    hive = request.getfixturevalue("spark_hive" if engine_name == "spark" else "hive")
    for name, (columns, lines) in TABLES.items():
        write_text(data_home / "corpus" / name / "part-0", lines)
        extra = COMPLEX_FORMAT if name == "complex" else ""
        hive.run_script(
            f"CREATE EXTERNAL TABLE {name} ({columns}) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
            f"{extra} LOCATION '{data_home / 'corpus' / name}'"
        )
    return hive


# Known differences (docs/hive.md lists them); strict, so a case that starts passing is noticed.
KNOWN: dict[str, str] = {}
# Where Spark cannot give Hive's answer (docs/engines.md "Differences"); strict xfail, so a case
# that starts passing is noticed. Every other case gives the same rows on both engines.
KNOWN_SPARK: dict[str, str] = {
    "arithmetic:casts between numbers and booleans": "CAST('false' AS boolean) is false in Spark, true in Hive",
    "strings:parse_url_tuple in a lateral view": "Spark has no parse_url_tuple",
    "strings:parse_url_tuple in the select list": "Spark has no parse_url_tuple",
    "queries:not exists": "Spark resolves s.key against the inner table's column s",
    "manual:manual cast conversions": "Spark casts 'false'/'0'-like strings to boolean by its own rules",
    "manual:manual parse_url_tuple": "Spark has no parse_url_tuple",
    "qtests_udf_math:exp and power": "Spark's exp is StrictMath's (exp(1) is 2.7182818284590455)",
    "qtests_udf_strings:split on the empty pattern": "Spark's split drops the trailing ''",
    "qtests_dates:an offset in the text wins over the session time zone": (
        "the Spark engine does not apply SET hive.local.time.zone to from_unixtime"
    ),
    "qtests_cast:a fraction in an int column is dropped on read": "Spark reads '12.5' in an int column as NULL",
    "qtests_cast:to boolean": "Spark casts '' and 'x' to boolean as NULL, Hive as false and true",
    "qtests_cast:varchar keeps its first characters": "Spark's CAST AS VARCHAR(n) does not truncate",
    "qtests_udf_math:div and factorial read strings as integers": "Spark refuses a string DIV a number",
    "qtests_udf_strings:ascii is the first utf-8 byte as a signed byte": "Spark's ascii is the code point",
    "errors:integer overflow is refused in hive terms": (
        "Spark wraps int overflow around as Hive does; the DuckDB engine refuses (its integers cannot wrap)"
    ),
}
# The whole corpus on Spark takes about six minutes on the 2-core CI machine: by default every
# third case of each file (and every known difference) runs on Spark, every case on DuckDB;
# TAILRACE_SPARK_CORPUS=full runs every case on both.
FULL_SPARK = os.environ.get("TAILRACE_SPARK_CORPUS") == "full"


def _params() -> list[object]:
    out: list[object] = []
    for c in CASES:
        key = f"{c.file}:{c.name}"
        marks = [pytest.mark.xfail(reason=KNOWN[key], strict=True)] if key in KNOWN else []
        out.append(pytest.param("duckdb", c, id=f"duckdb-{key}", marks=marks))
    by_file: dict[str, int] = {}
    for c in CASES:
        key = f"{c.file}:{c.name}"
        n = by_file[c.file] = by_file.get(c.file, -1) + 1
        if not (FULL_SPARK or n % 3 == 0 or key in KNOWN_SPARK):
            continue
        marks = [pytest.mark.spark]
        if key in KNOWN_SPARK:
            marks.append(pytest.mark.xfail(reason=KNOWN_SPARK[key], strict=True))
        out.append(pytest.param("spark", c, id=f"spark-{key}", marks=marks))
    return out


@pytest.mark.parametrize(("engine_name", "case"), _params())
def test_corpus(tables, case: Case, engine_name: str) -> None:
    if case.kind == "error":
        with pytest.raises(HiveError) as info:
            tables.run_script(case.script, source="case.q")
        message = str(info.value)
        assert case.error in message
        assert re.match(r"case\.q:\d+:\d+: statement \d+: ", message), message
        assert "Error:" not in message and "Traceback" not in message
        return
    result = tables.run_script(case.script)
    rows = result.statements[-1].select_rows
    if case.kind == "unordered":
        assert Counter(rows) == Counter(case.expected)
    else:
        assert rows == case.expected


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 50
    assert len({(c.file, c.name) for c in CASES}) == len(CASES)


def test_every_known_spark_difference_is_a_case_and_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "engines.md").read_text(encoding="utf-8")
    section = docs.partition("### Where Spark cannot give Hive's answer")[2].partition("\n## ")[0]
    names = {f"{c.file}:{c.name}" for c in CASES}
    for key in KNOWN_SPARK:
        assert key in names, key
        assert f"`{key}`" in section, f"{key} is not in docs/engines.md"


def test_hiveconf_on_the_command_line_means_what_set_means(home, capsys) -> None:
    from tailrace.cli.main import run
    from tailrace.services import build_services

    sql = "SELECT from_unixtime(0), '${hiveconf:greeting}'"
    args = [
        "hive",
        "-S",
        "-e",
        sql,
        "--hiveconf",
        "hive.local.time.zone=Asia/Tokyo",
        "--hiveconf",
        "greeting=hi",
    ]
    assert run(args, build_services) == 0
    assert capsys.readouterr().out == "1970-01-01 09:00:00\thi\n"
    assert (
        run(
            ["hive", "-S", "-e", "SET hive.local.time.zone=Asia/Tokyo; SELECT from_unixtime(0)"],
            build_services,
        )
        == 0
    )
    assert capsys.readouterr().out == "1970-01-01 09:00:00\n"


def test_unterminated_string_in_a_script_is_located(hive) -> None:
    with pytest.raises(HiveError) as info:
        hive.run_script("SELECT 1;\nSELECT 'abc,\n  2", source="job.q")
    assert str(info.value).startswith("job.q:2:8: statement 2: unterminated string")
