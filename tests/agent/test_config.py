"""agent.toml: fluentd key names, defaults, ${hostname}, errors that name the table and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailrace.agent.config import tag_matches, timekey_of
from tailrace.agent.configfile import load_config, parse_config, render_toml
from tailrace.errors import ConfigError

ISSUE_EXAMPLE = """
[[source]]
type = "tail"
path = "/var/log/httpd/access_log"      # a glob is fine too
pos_file = "/var/lib/tailrace/access.pos"
format = "apache"                       # parser
tag = "apache.access"
read_from_head = true

[[match]]
pattern = "apache.*"
type = "store"                          # the object store: s3://..., file://, or a path
path = "s3://memorycraft-log/logs/"
time_slice_format = "%Y%m%d/${hostname}-%H"
time_slice_wait = "10s"
buffer_path = "/var/lib/tailrace/buffer"
flush_interval = "5s"
store_as = "gzip"
"""


def test_the_issue_example_loads_as_written(tmp_path: Path):
    f = tmp_path / "agent.toml"
    f.write_text(ISSUE_EXAMPLE)
    cfg = load_config(f, home=tmp_path, hostname="web-1")
    (s,) = cfg.sources
    (m,) = cfg.matches
    assert s.paths == ("/var/log/httpd/access_log",)
    assert s.pos_file == Path("/var/lib/tailrace/access.pos")
    assert (s.parse.type, s.tag, s.read_from_head) == ("apache", "apache.access", True)
    assert m.path == "s3://memorycraft-log/logs/"
    assert m.time_slice_format == "%Y%m%d/web-1-%H"
    assert (m.timekey, m.timekey_wait, m.flush_interval) == (3600, 10.0, 5.0)
    assert m.flush_mode == "interval"  # fluentd: an explicit flush_interval means interval flushing
    assert m.buffer_path == Path("/var/lib/tailrace/buffer")
    assert m.object_key_format == "%{path}%{time_slice}_%{index}.%{file_extension}"
    assert m.file_extension == "gz"
    assert any("flush_mode" in w for w in cfg.warnings)
    text = render_toml(cfg.effective())
    assert 'time_slice_format = "%Y%m%d/web-1-%H"' in text


def _cfg(tmp_path: Path, source: dict | None = None, match: dict | None = None, **top) -> object:
    data = {
        "source": [{"path": "/x/access_log", "tag": "apache.access", "format": "apache2", **(source or {})}],
        "match": [{"pattern": "apache.**", "path": "s3://b/p/", **(match or {})}],
        **top,
    }
    return parse_config(data, origin="agent.toml", home=tmp_path, hostname="h")


def test_defaults_follow_fluentd(tmp_path: Path):
    cfg = _cfg(tmp_path)
    s, m = cfg.sources[0], cfg.matches[0]
    assert (s.read_from_head, s.rotate_wait, s.refresh_interval) == (False, 5.0, 60.0)
    assert (m.time_slice_format, m.timekey, m.timekey_wait, m.flush_mode) == ("%Y%m%d", 86400, 600.0, "lazy")
    assert m.store_as == "gzip" and m.check_object
    assert s.pos_file == (tmp_path / "agent" / "pos" / "tail.1.pos").absolute()


def test_v1_style_nested_parse_and_buffer_tables(tmp_path: Path):
    cfg = _cfg(
        tmp_path,
        source={"format": None, "parse": {"@type": "regexp", "expression": "/^(?<all>.*)$/"}},
        match={
            "buffer": {"path": "/tmp/buf", "timekey": "1h", "timekey_wait": "1m", "chunk_limit_size": "8m"}
        },
    )
    assert cfg.sources[0].parse.type == "regex"
    assert cfg.sources[0].parse.expression == "^(?<all>.*)$"
    m = cfg.matches[0]
    assert (m.buffer_path, m.timekey, m.time_slice_format, m.timekey_wait) == (
        Path("/tmp/buf"),
        3600,
        "%Y%m%d%H",
        60.0,
    )
    assert m.chunk_limit_size == 8 << 20


def test_td_agent_regex_format_and_s3_type(tmp_path: Path):
    cfg = _cfg(
        tmp_path,
        source={"format": "/^(?<host>\\S+) (?<rest>.*)$/"},
        match={"type": "s3", "s3_bucket": "memorycraft-log", "path": "logs/"},
    )
    assert cfg.sources[0].parse.type == "regex"
    assert cfg.matches[0].path == "s3://memorycraft-log/logs/"
    assert cfg.matches[0].type == "store"


@pytest.mark.parametrize(
    ("source", "match", "message"),
    [
        ({"flush_interval": "5s"}, {}, "[[source]] #1: unknown key 'flush_interval'"),
        ({}, {"flush_intervall": "5s"}, "Did you mean 'flush_interval'?"),
        ({}, {"flush_interval": "five"}, "'flush_interval' has value 'five'; expected a duration"),
        ({"format": "apache3"}, {}, "Did you mean 'apache"),
        ({}, {"store_as": "zip"}, "'store_as' has value 'zip'; expected one of gzip, text, json"),
        ({}, {"chunk_limit_size": "lots"}, "expected a size"),
        ({}, {"timezone": "Mars/Olympus"}, "expected an IANA zone name"),
        ({"tag": "nginx.access"}, {}, "which no [[match]] pattern matches"),
    ],
)
def test_bad_values_name_the_table_and_key(tmp_path: Path, source, match, message):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, source=source, match=match)
    assert message in str(err.value)
    assert "agent.toml" in str(err.value)


def test_shared_pos_files_are_refused(tmp_path: Path):
    data = {
        "source": [
            {"path": "/a", "tag": "apache.a", "format": "none", "pos_file": "/p.pos"},
            {"path": "/b", "tag": "apache.b", "format": "none", "pos_file": "/p.pos"},
        ],
        "match": [{"pattern": "apache.*", "path": "/out/"}],
    }
    with pytest.raises(ConfigError, match="share pos_file"):
        parse_config(data, home=tmp_path)


def test_zones(tmp_path: Path):
    assert _cfg(tmp_path, match={"utc": True}).matches[0].utc_suffix
    assert _cfg(tmp_path, match={"timezone": "+09:00"}).matches[0].zone == "Etc/GMT-9"
    assert _cfg(tmp_path, match={"timezone": "Asia/Tokyo"}).matches[0].zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("pattern", "tag", "expected"),
    [
        ("apache.*", "apache.access", True),
        ("apache.*", "apache.access.x", False),
        ("apache.**", "apache.access.x", True),
        ("apache.**", "apache", True),
        ("**", "anything.at.all", True),
        ("a.{b,c}", "a.c", True),
        ("a.{b,c}", "a.d", False),
        ("x.* apache.*", "apache.z", True),
    ],
)
def test_fluentd_tag_patterns(pattern, tag, expected):
    assert tag_matches(pattern, tag) is expected


def test_timekey_from_time_slice_format():
    assert timekey_of("%Y%m%d") == 86400
    assert timekey_of("%Y%m%d/web-%H") == 3600
    assert timekey_of("%Y%m%d%H%M") == 60


@pytest.mark.parametrize(
    ("pattern", "tag", "expected"),
    [
        ("**.b", "b", True),
        ("**.b", "a.x.b", True),
        ("a.**.b", "a.b", True),
        ("a.**.b", "a.x.y.b", True),
        ("a.**.b", "a.x", False),
    ],
)
def test_double_star_in_any_position(pattern, tag, expected):
    assert tag_matches(pattern, tag) is expected
