"""Tables: partitions, persistence in the metastore, atomic overwrite, INSERT INTO copies."""

from __future__ import annotations

import pytest
from hive_helpers import rows_of, write_gz, write_text

from tailrace.engines.hive import HiveEngine, HiveError, TableSpec
from tailrace.engines.metastore import PartitionSpec
from tailrace.storage import Storage

LOGS = """CREATE EXTERNAL TABLE logs (host string, path string) PARTITIONED BY (dt string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://bucket/logs'"""


def test_add_partition_msck_repair_and_partition_columns(hive, data_home):
    root = data_home / "s3" / "bucket" / "logs"
    write_gz(root / "dt=20121221" / "a_0.gz", ["h1\t/a", "h2\t/b"])
    write_text(root / "dt=20121222" / "a_0", ["h3\t/c"])
    write_text(data_home / "elsewhere" / "part", ["h4\t/d"])
    hive.run_script(LOGS)
    result = hive.run_script("SHOW PARTITIONS logs; SELECT count(*) FROM logs")
    assert result.statements[0].select_rows == []
    assert result.statements[1].select_rows == [("0",)]
    result = hive.run_script(
        f"MSCK REPAIR TABLE logs; ALTER TABLE logs ADD IF NOT EXISTS PARTITION (dt='20121220') "
        f"LOCATION '{data_home / 'elsewhere'}'; SHOW PARTITIONS logs;"
        "SELECT dt, host, path FROM logs ORDER BY dt, host"
    )
    assert result.statements[2].select_rows == [("dt=20121220",), ("dt=20121221",), ("dt=20121222",)]
    assert result.statements[3].select_rows == [
        ("20121220", "h4", "/d"),
        ("20121221", "h1", "/a"),
        ("20121221", "h2", "/b"),
        ("20121222", "h3", "/c"),
    ]
    with pytest.raises(HiveError, match="Partition already exists: dt=20121220"):
        hive.run_script("ALTER TABLE logs ADD PARTITION (dt='20121220')")
    hive.run_script("ALTER TABLE logs DROP PARTITION (dt='20121220')")
    assert hive.run_script("SELECT count(*) FROM logs").statements[0].select_rows == [("3",)]


def test_insert_into_static_and_dynamic_partitions(hive, data_home):
    write_text(data_home / "src" / "f", ["a\t/x\t20121221", "b\t/y\t20121222", "c\t/z\t20121221"])
    hive.run_script(
        f"""CREATE EXTERNAL TABLE src (host string, path string, day string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION '{data_home / "src"}';
        {LOGS};
        INSERT OVERWRITE TABLE logs PARTITION (dt='20121201') SELECT host, path FROM src WHERE day = '20121221';
        INSERT OVERWRITE TABLE logs PARTITION (dt) SELECT host, path, day FROM src"""
    )
    root = data_home / "s3" / "bucket" / "logs"
    assert rows_of(root / "dt=20121201" / "000000_0") == [["a", "/x"], ["c", "/z"]]
    assert rows_of(root / "dt=20121221" / "000000_0") == [["a", "/x"], ["c", "/z"]]
    assert rows_of(root / "dt=20121222" / "000000_0") == [["b", "/y"]]
    parts = hive.metastore.list_partitions("default", "logs")
    assert [p.name for p in parts] == ["dt=20121201", "dt=20121221", "dt=20121222"]


def test_table_definitions_persist_across_engines(data_home, metastore):
    write_text(data_home / "t" / "f", ["1,x"])
    first = HiveEngine(Storage(home=data_home), metastore, work_dir=data_home / "w1")
    first.run_script(
        f"CREATE EXTERNAL TABLE keep (n int, s string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
        f"LOCATION '{data_home / 't'}'; {LOGS}; ALTER TABLE logs ADD PARTITION (dt='1')"
    )
    first.register_table(
        TableSpec(name="session_only", columns=[("a", "string")], location=str(data_home / "t"))
    )
    first.close()
    second = HiveEngine(Storage(home=data_home), metastore, work_dir=data_home / "w2")
    try:
        assert second.run_script("SELECT n + 1, s FROM keep").statements[0].select_rows == [("2", "x")]
        assert [p.values for p in metastore.list_partitions("default", "logs")] == [(("dt", "1"),)]
        with pytest.raises(HiveError, match="Table not found 'session_only'"):
            second.run_script("SELECT * FROM session_only")
        second.run_script("DROP TABLE keep")
        assert metastore.get_table("default", "keep") is None
        assert (data_home / "t" / "f").exists()  # external: the data stays
    finally:
        second.close()


def test_managed_table_lives_in_the_warehouse_and_drop_removes_it(hive, data_home):
    hive.run_script(
        "CREATE TABLE m (a string); INSERT INTO TABLE m SELECT 'x'; INSERT INTO TABLE m SELECT 'y'"
    )
    folder = data_home / "warehouse" / "m"
    assert sorted(p.name for p in folder.iterdir()) == ["000000_0", "000000_0_copy_1"]
    assert hive.run_script("SELECT a FROM m ORDER BY a").statements[0].select_rows == [("x",), ("y",)]
    hive.run_script("DROP TABLE m")
    assert not folder.exists()


def test_failed_insert_overwrite_leaves_the_old_files(hive, data_home):
    write_text(data_home / "src" / "f", ["1", "2"])
    hive.run_script(
        f"""CREATE EXTERNAL TABLE src (a string) LOCATION '{data_home / "src"}';
        CREATE EXTERNAL TABLE dst (a string) LOCATION '{data_home / "dst"}';
        INSERT OVERWRITE TABLE dst SELECT a FROM src"""
    )
    before = (data_home / "dst" / "000000_0").read_bytes()
    with pytest.raises(HiveError) as info:
        hive.run_script(
            "INSERT OVERWRITE TABLE dst SELECT coalesce(assert_true(a <> '2'), a) FROM src;"
            "INSERT OVERWRITE TABLE dst SELECT 'never' FROM src"
        )
    assert info.value.statement == 1 and "ASSERT_TRUE(): assertion failed" in str(info.value)
    assert sorted(p.name for p in (data_home / "dst").iterdir()) == ["000000_0"]
    assert (data_home / "dst" / "000000_0").read_bytes() == before
    assert list((data_home / "tmp" / "work" / "out").iterdir()) == []


def test_failed_commit_leaves_the_old_files(hive, data_home, monkeypatch):
    write_text(data_home / "src" / "f", ["1"])
    hive.run_script(
        f"""CREATE EXTERNAL TABLE src (a string) LOCATION '{data_home / "src"}';
        CREATE EXTERNAL TABLE dst (a string) LOCATION '{data_home / "dst"}';
        INSERT OVERWRITE TABLE dst SELECT a FROM src"""
    )
    import tailrace.storage.local as local

    def broken(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local, "_exchange", lambda a, b: False)
    monkeypatch.setattr(local.os, "rename", broken)
    with pytest.raises(HiveError, match="No space left"):
        hive.run_script("INSERT OVERWRITE TABLE dst SELECT 'new' FROM src")
    monkeypatch.undo()
    assert rows_of(data_home / "dst" / "000000_0") == [["1"]]
    assert sorted(p.name for p in (data_home / "dst").iterdir()) == ["000000_0"]


def test_csv_serde_tables_quote_on_write_and_unquote_on_read(hive, data_home):
    write_text(
        data_home / "in" / "x.tsv",
        [
            '"2012-12-24T14:16:13+00:00"\t"10.118.137.132"\t"-"',
            '2012-12-24T14:16:14+00:00\t{"host":"h","path":"/p"}\t',
            '"a ""quoted"" word"\t"x"',
        ],
    )
    hive.register_table(
        TableSpec(
            name="input1",
            columns=[("dt", "string"), ("host", "string"), ("size", "bigint")],
            location=str(data_home / "in"),
            row_format="csv_serde",
            field_delimiter="\t",
        )
    )
    hive.register_table(
        TableSpec(
            name="output1",
            columns=[("dt", "string"), ("host", "string"), ("size", "bigint")],
            location=str(data_home / "out"),
            row_format="csv_serde",
            field_delimiter="\t",
        )
    )
    result = hive.run_script("SELECT * FROM input1; INSERT OVERWRITE TABLE output1 SELECT * FROM input1")
    assert result.statements[0].select_rows == [
        ("2012-12-24T14:16:13+00:00", "10.118.137.132", "-"),
        ("2012-12-24T14:16:14+00:00", '{"host":"h","path":"/p"}', ""),
        ('a "quoted" word', "x", None),
    ]
    assert (data_home / "out" / "000000_0").read_text() == (
        '"2012-12-24T14:16:13+00:00"\t"10.118.137.132"\t"-"\n'
        '"2012-12-24T14:16:14+00:00"\t"{""host"":""h"",""path"":""/p""}"\t""\n'
        '"a ""quoted"" word"\t"x"\t\n'
    )
    assert result.malformed_lines == 1
    assert hive.metastore.get_table("default", "input1") is None


def test_gzip_output_when_compression_is_set(hive, data_home):
    import gzip

    hive.run_script(
        f"""SET hive.exec.compress.output=true;
        CREATE EXTERNAL TABLE z (a string) LOCATION '{data_home / "z"}';
        INSERT OVERWRITE TABLE z SELECT 'x'"""
    )
    assert gzip.decompress((data_home / "z" / "000000_0.gz").read_bytes()) == b"x\n"


def test_partition_spec_names_escape_like_hive():
    spec = PartitionSpec(values=(("dt", "2012/12:21"), ("h", "a=b")), location="")
    assert spec.name == "dt=2012%2F12%3A21/h=a%3Db"


def test_partition_filters_prune_what_is_listed_and_downloaded(hive, data_home, monkeypatch):
    root = data_home / "s3" / "bucket" / "logs"
    for day in ("20121220", "20121221", "20121222"):
        write_text(root / f"dt={day}" / "f", [f"h-{day}\t/p"])
    hive.run_script(f"{LOGS}; MSCK REPAIR TABLE logs")
    listed: list[str] = []
    original = hive.files.list

    def spy(location):
        listed.append(location.rsplit("=", 1)[-1])
        return original(location)

    monkeypatch.setattr(hive.files, "list", spy)
    rows = (
        hive.run_script(
            "SELECT l.host FROM logs l WHERE l.dt IN ('20121221', '20121222') AND l.path = '/p' ORDER BY l.host"
        )
        .statements[0]
        .select_rows
    )
    assert rows == [("h-20121221",), ("h-20121222",)]
    assert listed == ["20121221", "20121222"]
    listed.clear()
    rows = hive.run_script("SELECT host FROM logs WHERE dt = '20121221' OR host = 'h-20121220' ORDER BY host")
    assert rows.statements[0].select_rows == [("h-20121220",), ("h-20121221",)]
    assert listed == ["20121220", "20121221", "20121222"]  # OR: every partition may match
    listed.clear()
    hive.run_script("SELECT a.host FROM logs a JOIN logs b ON a.host = b.host WHERE a.dt = '20121220'")
    assert listed == ["20121220", "20121221", "20121222"]  # b is not filtered: read everything


def test_overwrite_with_no_rows_leaves_one_empty_file(hive, data_home):
    write_text(data_home / "src" / "f", ["1"])
    write_text(data_home / "dst" / "000000_0", ["old"])
    write_text(data_home / "dst" / "000001_0", ["old"])
    hive.run_script(
        f"""CREATE EXTERNAL TABLE src (a string) LOCATION '{data_home / "src"}';
        CREATE EXTERNAL TABLE dst (a string) LOCATION '{data_home / "dst"}';
        INSERT OVERWRITE TABLE dst SELECT a FROM src WHERE a = 'none'"""
    )
    assert [(p.name, p.read_bytes()) for p in (data_home / "dst").iterdir()] == [("000000_0", b"")]
