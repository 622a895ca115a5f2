"""Parsers: fluentd's field names, types, time handling; the vectorised path against a reference."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tailrace.agent.config import MatchConfig, ParseConfig
from tailrace.agent.output import Formatter
from tailrace.agent.parsers import make_parser
from tailrace.sample.accesslog import combined_line, fluentd_line

from .conftest import reference_apache2, sample_hits, sample_lines

NOW = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)


def lines_of(parser_type: str, lines: list[str], **kw) -> tuple[list[str], list[tuple[int, str]]]:
    parsed = make_parser(ParseConfig(type=parser_type, **kw)).parse(pl.Series(lines, dtype=pl.String), NOW)
    m = MatchConfig(id="m", pattern="**", buffer_path=Path("/nonexistent"), timekey=3600)
    out = []
    for part in Formatter(m).parts(parsed, "apache.access"):
        out += part.data.decode().splitlines()
    return out, parsed.bad


def records(out: list[str]) -> list[dict]:
    return [json.loads(line.split("\t", 2)[2]) for line in out]


def test_apache2_matches_the_fluentd_docs_example():
    line = '192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] "GET / HTTP/1.1" 200 777 "-" "Opera/12.0"'
    out, bad = lines_of("apache2", [line])
    assert bad == []
    assert out == [
        '2013-02-28T03:00:00+00:00\tapache.access\t{"host":"192.168.0.1","user":null,"method":"GET","path":"/",'
        '"code":200,"size":777,"referer":null,"agent":"Opera/12.0"}'
    ]


def test_apache2_vectorised_equals_the_plain_python_reference():
    lines = [
        *sample_lines(3000, seed=11),
        '1.2.3.4 - bob [15/Jan/2024:10:00:00 -0130] "GET /a\\"b?q=1 HTTP/1.1" 0 - "" "x"',
        '1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET" 404 12',
        '::1 - - [15/Jan/2024:10:00:00 +0000] "OPTIONS * HTTP/1.0" 200 - "-" "Apache (internal dummy connection)"',
        '5.6.7.8 - - [15/Jan/2024:10:00:00 +0000] "GET /é/日本 HTTP/1.1" 200 12abc "-" "ü"',
    ]
    out, bad = lines_of("apache2", lines)
    assert bad == []
    assert out == [reference_apache2(line) for line in lines]


def test_apache_keeps_strings_as_the_seed_pipelines_expect():
    hits = sample_hits(500, seed=3)
    lines = [combined_line(h) for h in hits]
    out, bad = lines_of("apache", lines)
    assert bad == []
    assert out == [fluentd_line(replace(h, reqtime=None)) for h in hits]  # combined has no timing
    assert any('"size":"-"' in line for line in out)
    assert any('"user":"-"' in line for line in out)


def test_apache_leaves_out_groups_that_did_not_match_like_regexpparser():
    out, _ = lines_of("apache", ['1.2.3.4 - - [15/Jan/2024:10:00:00 +0000] "GET /x HTTP/1.0" 200 321'])
    assert records(out) == [
        {"host": "1.2.3.4", "user": "-", "method": "GET", "path": "/x", "code": "200", "size": "321"}
    ]


def test_nginx_field_names():
    line = '10.0.0.1 - alice [15/Jan/2024:10:00:00 +0900] "POST /api HTTP/1.1" 201 17 "http://r/" "curl/8" "1.1.1.1"'
    out, bad = lines_of("nginx", [line])
    assert bad == []
    assert records(out) == [
        {
            "remote": "10.0.0.1",
            "host": "-",
            "user": "alice",
            "method": "POST",
            "path": "/api",
            "code": "201",
            "size": "17",
            "referer": "http://r/",
            "agent": "curl/8",
            "http_x_forwarded_for": "1.1.1.1",
        }
    ]
    assert out[0].startswith("2024-01-15T01:00:00+00:00\t")


def test_malformed_lines_are_reported_with_reasons_and_good_ones_kept():
    good = sample_lines(3)
    lines = [
        good[0],
        "garbage",
        good[1],
        '1.2.3.4 - - [31/Feb/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 5',
        good[2],
        "",
    ]
    out, bad = lines_of("apache2", lines)
    assert [i for i, _ in bad] == [1, 3, 5]
    assert bad[0][1] == "pattern not matched"
    assert "invalid time" in bad[1][1]
    assert out == [reference_apache2(x) for x in good]


def test_json_parser_removes_the_time_key_and_keeps_order():
    out, bad = lines_of(
        "json",
        [
            '{"b":1,"time":1705312800,"a":"x"}',
            '{"time":"2024-01-15T10:00:00+09:00","k":null}',
            "[1,2]",
            "{bad",
        ],
    )
    assert out == [
        '2024-01-15T10:00:00+00:00\tapache.access\t{"b":1,"a":"x"}',
        '2024-01-15T01:00:00+00:00\tapache.access\t{"k":null}',
    ]
    assert [i for i, _ in bad] == [2, 3]


def test_json_without_time_uses_the_read_time():
    out, _ = lines_of("json", ['{"a":1}'])
    assert out == ['2024-02-01T12:00:00+00:00\tapache.access\t{"a":1}']


def test_ltsv_and_types():
    out, bad = lines_of(
        "ltsv",
        ["time:15/Jan/2024:10:00:00 +0000\thost:1.2.3.4\tsize:42\treq:GET /"],
        time_format="%d/%b/%Y:%H:%M:%S %z",
        types={"size": "integer"},
    )
    assert bad == []
    assert out == ['2024-01-15T10:00:00+00:00\tapache.access\t{"host":"1.2.3.4","size":42,"req":"GET /"}']


def test_none_parser_keeps_the_whole_line():
    out, _ = lines_of("none", ["anything \t at all"])
    assert records(out) == [{"message": "anything \t at all"}]


def test_regex_with_named_groups_types_and_time_format():
    expr = r"^(?<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?<level>\w+)\] (?<pid>\d+) (?<msg>.*)$"
    out, bad = lines_of(
        "regex",
        ["2024-01-15 10:00:00 [warn] 42 disk almost full", "nope"],
        expression=expr,
        time_format="%Y-%m-%d %H:%M:%S",
        types={"pid": "integer"},
    )
    assert [i for i, _ in bad] == [1]
    assert out == [
        '2024-01-15T10:00:00+00:00\tapache.access\t{"level":"warn","pid":42,"msg":"disk almost full"}'
    ]


def test_regex_the_rust_engine_cannot_compile_falls_back_to_python():
    parser = make_parser(ParseConfig(type="regex", expression=r"^(?<word>\w+) (?=(?<next>\w+))"))
    assert not parser.vectorised  # look-ahead
    parsed = parser.parse(pl.Series(["hello world", "x"]), NOW)
    assert parsed.dicts == [{"word": "hello", "next": "world"}]
    assert [i for i, _ in parsed.bad] == [1]


def test_a_regex_without_named_groups_is_a_config_error():
    from tailrace.errors import ConfigError

    with pytest.raises(ConfigError, match="named group"):
        make_parser(ParseConfig(type="regex", expression=r"^\w+$"))
