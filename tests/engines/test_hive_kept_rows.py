"""The kept table holds only what the rest of the script reads, and COPY reads queries directly
(tailrace.engines.hive.sources, foresight, sqltext, writing)."""

from __future__ import annotations

import json

import sqlglot
from hive_helpers import write_text

from tailrace.engines.hive import foresight, sqltext
from tailrace.engines.hive.dialect import TailraceHive
from tailrace.engines.hive.sources import Plan, SourceTables

LATERAL = "FROM logs LATERAL VIEW json_tuple(logs.j, 'n', 'h') t AS n, h"


def _logs(hive, data_home, lines: list[str]) -> None:
    for i in range(0, len(lines), 40):
        write_text(data_home / "in" / "logs" / f"part-{i:06d}", lines[i : i + 40])
    hive.run_script(
        "CREATE EXTERNAL TABLE logs (d string, tag string, j string) ROW FORMAT DELIMITED "
        f"FIELDS TERMINATED BY '\\t' LOCATION '{data_home / 'in' / 'logs'}'"
    )


def _lines() -> list[str]:
    out = [
        f"2012-12-2{i % 3}T0{i % 5}\tapp\t" + json.dumps({"n": str(i), "h": f"h{i % 4}"}) for i in range(150)
    ]
    out[7] = "2012-12-21T01\tapp"  # a short line
    out[11] = "2012-12-21T02\tapp\t{broken"
    return out


def _kept(hive) -> list[tuple[str, int, list[str]]]:
    names = hive.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_\\_kept%' ESCAPE '\\'"
    ).fetchall()
    out = []
    for (name,) in sorted(names):
        rel = hive.con.sql(f'FROM "{name}"')
        out.append((name, len(rel.fetchall()), [c.lower() for c in rel.columns]))
    return out


def test_the_seed_shape_keeps_only_the_rows_its_where_passes_and_the_columns_named(
    hive, data_home, monkeypatch
):
    lines = _lines()
    _logs(hive, data_home, lines)
    where = "WHERE substr(d, 0, 10) = '2012-12-21'"
    seen: list[list[tuple[str, int, list[str]]]] = []
    materialised: list[str] = []
    real = hive._materialize
    monkeypatch.setattr(hive, "_materialize", lambda tr: (materialised.append(tr.sql), real(tr))[1])
    out = data_home / "out"
    result = hive.run_script(
        f"CREATE TABLE archive (d string, n int, h string) LOCATION '{out}';"
        f"INSERT OVERWRITE TABLE archive SELECT d, n, h {LATERAL} {where} ORDER BY d;"
        f"SELECT h, count(d) {LATERAL} {where} GROUP BY h ORDER BY h",
        on_statement=lambda res: seen.append(_kept(hive)) if res.number > 1 else None,
    )
    day = [(i, line.split("\t")) for i, line in enumerate(lines) if line.startswith("2012-12-21")]
    # 50 rows pass the WHERE; the tag and the raw JSON are named by no statement.
    assert seen[0] == [("__kept_1", len(day), ["d", "__short", "n", "h", "__jbad1"])]
    assert seen[1] == seen[0]  # the second statement read it
    docs = []
    for i, parts in day:
        try:
            doc = json.loads(parts[2]) if len(parts) > 2 else {}
        except ValueError:
            doc = {}
        docs.append((parts[0], i, doc.get("n"), doc.get("h")))
    archive = [
        "\x01".join(v or "\\N" for v in (d, n, h)) for d, _, n, h in sorted(docs, key=lambda r: (r[0], r[1]))
    ]
    # COPY read the ordered query itself (no `__result` table): the file keeps the order, and the
    # flags were summed by a scan of the kept table.
    assert (out / "000000_0").read_text().splitlines() == archive
    assert len(materialised) == 1 and "GROUP BY" in materialised[0]  # the SELECT's rows, to return them
    counts: dict[str | None, int] = {}
    for _, _, _, h in docs:
        counts[h] = counts.get(h, 0) + 1
    assert result.statements[2].select_rows == [
        (h, str(c)) for h, c in sorted(counts.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
    ]
    for res in result.statements[1:]:
        assert (res.malformed.short_lines, res.malformed.bad_json) == (1, 1)


def test_another_where_later_keeps_every_row_and_a_named_column_stays(hive, data_home):
    lines = _lines()
    _logs(hive, data_home, lines)
    seen: list[list[tuple[str, int, list[str]]]] = []
    result = hive.run_script(
        f"SELECT d, n {LATERAL} WHERE substr(d, 0, 10) = '2012-12-21' ORDER BY d;"
        f"SELECT tag, count(*) {LATERAL} WHERE substr(d, 0, 10) = '2012-12-22' GROUP BY tag",
        on_statement=lambda _res: seen.append(_kept(hive)),
    )
    assert seen[0] == [("__kept_1", len(lines), ["d", "tag", "__short", "n", "h", "__jbad1"])]
    assert result.statements[1].select_rows == [("app", str(sum(x.startswith("2012-12-22") for x in lines)))]


def test_a_where_that_may_change_between_runs_is_not_applied_to_the_kept_rows(hive, data_home):
    lines = _lines()
    _logs(hive, data_home, lines)
    seen: list[list[tuple[str, int, list[str]]]] = []
    hive.run_script(
        f"SELECT d, n {LATERAL} WHERE rand() < 0.5 ORDER BY d;SELECT count(*) {LATERAL} WHERE rand() < 0.5",
        on_statement=lambda _res: seen.append(_kept(hive)),
    )
    assert seen[0][0][1] == len(lines)


def test_a_filtered_table_serves_only_the_same_where_on_the_item_alone(hive):
    sources = SourceTables(hive.con)
    hive.con.execute("CREATE TABLE other (a INT)")
    sources.define("__t_default_x", "SELECT range AS a, false AS __short FROM range(10)", [], lenient=False)
    tie = "ROW_NUMBER() OVER () AS __rn"
    item = '(SELECT a, __short FROM "__t_default_x" AS x)'
    first = f"SELECT a, {tie} FROM {item} AS x WHERE a > 5 ORDER BY a, __rn"
    rewritten = sources.rewrite(first, stable=True, plan=lambda: Plan(filter=True))
    assert '"__kept_1"' in rewritten
    assert hive.con.execute('SELECT count(*) FROM "__kept_1"').fetchone() == (4,)
    assert sources.scans_kept(rewritten) and not sources.scans_kept(first)
    same = f"SELECT count(*) FROM {item} AS x WHERE a > 5"
    assert sources.rewrite(same, stable=True) == 'SELECT count(*) FROM "__kept_1" AS x WHERE a > 5'
    for sql in (
        f"SELECT count(*) FROM {item} AS x WHERE a > 4",  # another condition
        f"SELECT count(*) FROM {item} AS x WHERE a > 5 OR a = 0",  # a wider one
        f"SELECT count(*) FROM {item} AS x",  # none
        f"SELECT count(*) FROM {item} AS x RIGHT JOIN other AS o ON o.a = x.a WHERE a > 5",  # joined
        f"SELECT count(*) FROM {item} AS x WHERE a > 5 UNION ALL SELECT count(*) FROM {item} AS y",
    ):
        assert sources.rewrite(sql, stable=True) == sql, sql


def test_top_clauses_find_the_outer_query_only():
    sql = (
        "SELECT a, row_number() OVER (ORDER BY b) FROM (SELECT a, b FROM t WHERE b > 0 ORDER BY a) AS q "
        "WHERE a <> 'ORDER BY' AND (b IN (SELECT 1 LIMIT 1)) GROUP BY a ORDER BY a DESC, 2"
    )
    top = sqltext.top_clauses(sql)
    assert top.from_item == "(SELECT a, b FROM t WHERE b > 0 ORDER BY a)"
    assert top.where == "a <> 'ORDER BY' AND (b IN (SELECT 1 LIMIT 1))"
    assert top.alone and not top.limited
    assert sqltext.unordered(sql) == sql[: sql.index(" ORDER BY a DESC")] + " "
    assert sqltext.unordered("SELECT a FROM t ORDER BY a LIMIT 3") is None
    assert sqltext.unordered("SELECT a FROM t") == "SELECT a FROM t"
    assert not sqltext.top_clauses("SELECT 1 FROM (SELECT 1) q, t").alone
    assert sqltext.top_clauses("SELECT 'unterminated").from_item is None


def test_foresight_reads_the_later_statements_of_the_same_table():
    def hive_select(text: str) -> sqlglot.exp.Expr:
        return sqlglot.parse_one(text, read=TailraceHive)

    query = hive_select(f"SELECT d, n {LATERAL} WHERE d > '1' ORDER BY d")
    same = f"INSERT OVERWRITE TABLE s SELECT h, count(*) {LATERAL} WHERE d  >  '1' GROUP BY h"
    assert foresight.plan(query, [same]) == Plan(
        filter=True, names=frozenset({"s", "h", "logs", "j", "t", "n", "d"})
    )
    assert foresight.plan(query, []) == Plan(filter=True, names=frozenset())
    assert foresight.plan(query, ["SELECT 1 FROM other WHERE x = 2"]).filter
    assert not foresight.plan(query, [same, "SELECT tag FROM logs"]).filter
    assert not foresight.plan(hive_select(f"SELECT d {LATERAL} ORDER BY d"), [same]).filter
    assert foresight.plan(query, ["SELECT ( FROM logs"]) == Plan()  # unreadable: no guess
    assert foresight.plan(query, None) == Plan()
    assert foresight.plan(hive_select("SELECT a FROM logs JOIN o ON true WHERE d > '1'"), [same]) == Plan()
