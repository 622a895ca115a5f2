"""Published AWS samples that use databases, run unchanged through `tailrace run` with their
parameter values: RDStoS3 (a MySqlDataNode copied to S3, on MariaDB) and
S3TsvFilesToRedshiftTablesIfReady (RedshiftCopyActivity with OVERWRITE_EXISTING, its
jdbc:redshift: cluster mapped to PostgreSQL)."""

from __future__ import annotations

from dbhelpers import MYSQL_PASSWORD, MYSQL_USER, PG_JDBC, unique

from compat_samples import SAMPLES, require_samples
from tailrace.cli.main import run as cli
from tailrace.services import build_services

require_samples()


def tailrace_run(sample: str, values: dict[str, str]) -> int:
    argv = [
        "run",
        str(SAMPLES / sample),
        "-q",
        "--parameter-values",
        *(f"{k}={v}" for k, v in values.items()),
    ]
    return cli(argv, build_services)


def test_rds_to_s3_sample_on_mariadb(home, mysql, capsys):
    table = unique("tr_rds")
    cur = mysql.cursor()
    cur.execute(f"CREATE TABLE {table} (id INT, host VARCHAR(30))")
    cur.execute(f"INSERT INTO {table} VALUES (1, 'web-1'), (2, 'web-2')")
    try:
        code = tailrace_run(
            "RDStoS3__RDStoS3Pipeline.json",
            {
                "myRDSConnectStr": "jdbc:mysql://127.0.0.1:3306/test",
                "myRDSUsername": MYSQL_USER,
                "*myRDSPassword": MYSQL_PASSWORD,
                "myRDSTableName": table,
                "myOutputS3Path": "s3://samples/rds",
                "myS3LogsPath": "s3://samples/logs",
                "myEc2RdsSecurityGrps": "sg-1",
            },
        )
        out = capsys.readouterr()
        assert code == 0, out
        written = [p for p in (home / "s3" / "samples" / "rds").rglob("*") if p.is_file()]
        assert len(written) == 1 and sorted(written[0].read_text().splitlines()) == ["1\tweb-1", "2\tweb-2"]
        logs = "".join(p.read_text() for p in (home / "s3" / "samples" / "logs").rglob("*") if p.is_file())
        assert MYSQL_PASSWORD not in out.out + out.err + logs
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_s3_tsv_files_to_redshift_tables_sample_on_postgresql(home, pg, tmp_path, monkeypatch, capsys):
    tables = [unique("tr_tsv1"), unique("tr_tsv2")]
    for n, table in enumerate(tables, start=1):
        pg.execute(f"CREATE TABLE {table} (id int primary key, v text)")
        pg.execute(f"INSERT INTO {table} VALUES (1, 'kept'), (2, 'old')")
        (home / "s3" / "samples").mkdir(parents=True, exist_ok=True)
        (home / "s3" / "samples" / f"in{n}.tsv").write_text(f"2\tnew{n}\n3\tadded{n}\n")
    host = "examplecluster.abc123.us-east-1.redshift.amazonaws.com"
    (tmp_path / "tailrace.toml").write_text(f'[databases.redshift_clusters]\n"{host}" = "{PG_JDBC}"\n')
    monkeypatch.setenv("TAILRACE_CONFIG", str(tmp_path / "tailrace.toml"))
    try:
        code = tailrace_run(
            "S3TsvFilesToRedshiftTablesIfReady__S3TsvFilesToRedshiftTablesIfReady.json",
            {
                "myRedshiftJdbcConnectStr": f"jdbc:redshift://{host}:5439/dev",
                "myRedshiftDbName": "test",
                "myRedshiftUsername": "postgres",
                "*myRedshiftPassword": "not-used-by-trust",
                "myRedshiftSecurityGrpIds": "sg-1",
                "myInputTsvFilesS3Loc_1": "s3://samples/in1.tsv",
                "myDestRedshiftTable_1": tables[0],
                "myInputTsvFilesS3Loc_2": "s3://samples/in2.tsv",
                "myDestRedshiftTable_2": tables[1],
                "myLogUri": "s3://samples/logs",
            },
        )
        assert code == 0, capsys.readouterr()
        for n, table in enumerate(tables, start=1):
            got = pg.execute(f"SELECT id, v FROM {table} ORDER BY id").fetchall()
            assert got == [(1, "kept"), (2, f"new{n}"), (3, f"added{n}")]
    finally:
        for table in tables:
            pg.execute(f"DROP TABLE IF EXISTS {table}")
