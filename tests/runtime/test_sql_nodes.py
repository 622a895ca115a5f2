"""MySqlDataNode, SqlDataNode, RdsDatabase and JdbcDatabase on the real MariaDB and PostgreSQL:
SqlActivity, CopyActivity both ways, and what bad input does (the attempt FAILED and retried,
the error naming object and field, no password in the log, nothing half-written)."""

from __future__ import annotations

from dbhelpers import MYSQL_JDBC, MYSQL_PASSWORD, MYSQL_USER, PG_JDBC, attempt_log, dump, result, unique

SECRET = MYSQL_PASSWORD


def jdbc(oid: str, url: str, *, user: str = MYSQL_USER, password: str = SECRET) -> dict:
    return {
        "id": oid,
        "type": "JdbcDatabase",
        "connectionString": url,
        "jdbcDriverClass": "com.mysql.jdbc.Driver",
        "username": user,
        "*password": password,
    }


def test_mysql_script_copy_out_and_back_in(home, mysql, run_objects):
    src, dst = unique("tr_src"), unique("tr_dst")
    rds_config = f'[databases.rds_instances]\nmy-rds = "{MYSQL_JDBC}"\n'
    objects = [
        {
            "id": "Rds",
            "type": "RdsDatabase",
            "rdsInstanceId": "my-rds",
            "username": MYSQL_USER,
            "*password": SECRET,
        },
        {
            "id": "Setup",
            "type": "SqlActivity",
            "database": {"ref": "Rds"},
            # Several statements; the arguments fill the ?s in order across them.
            "script": f"CREATE TABLE {src} (id INT PRIMARY KEY, name VARCHAR(40), note TEXT);\n"
            f"-- a comment; with a semicolon\nINSERT INTO {src} VALUES (1, ?, 'a,b'), (2, NULL, 'tab\\there');\n"
            f"INSERT INTO {src} VALUES (3, ?, ?);\nCREATE TABLE {dst} (id INT, name VARCHAR(40), note TEXT)",
            "scriptArgument": ["#{format(@scheduledStartTime,'YYYY-MM-dd')}", "carol", "back\\slash"],
        },
        # The old samples' MySqlDataNode: its own connection fields, a selectQuery.
        {
            "id": "Source",
            "type": "MySqlDataNode",
            "connectionString": MYSQL_JDBC,
            "username": MYSQL_USER,
            "*password": SECRET,
            "table": src,
            "selectQuery": "select * from #{table} order by id",
        },
        {"id": "Csv", "type": "CSV"},
        {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://dn/out/", "dataFormat": {"ref": "Csv"}},
        {
            "id": "Export",
            "type": "CopyActivity",
            "input": {"ref": "Source"},
            "output": {"ref": "Out"},
            "dependsOn": {"ref": "Setup"},
        },
        {
            "id": "Target",
            "type": "SqlDataNode",
            "database": {"ref": "Rds"},
            "table": dst,
            "insertQuery": "INSERT INTO #{table} (id, name, note) VALUES (?, ?, ?)",
        },
        {
            "id": "Import",
            "type": "CopyActivity",
            "input": {"ref": "Out"},
            "output": {"ref": "Target"},
            "dependsOn": {"ref": "Export"},
        },
    ]
    try:
        report = run_objects(objects, config=rds_config)
        assert not report.failed, [(r.instance.component_id, r.error) for r in report.results]
        exported = (home / "s3" / "dn" / "out" / "000000_0").read_text()
        assert exported == "1,2012-12-24,a\\,b\n2,\\N,tab\there\n3,carol,back\\\\slash\n"
        cur = mysql.cursor()
        cur.execute(f"SELECT id, name, note FROM {dst} ORDER BY id")
        assert cur.fetchall() == (
            (1, "2012-12-24", "a,b"),
            (2, None, "tab\there"),
            (3, "carol", "back\\slash"),
        )
        assert result(report, "Import").summary == {"rows_written": 3}
    finally:
        mysql.cursor().execute(f"DROP TABLE IF EXISTS {src}, {dst}")


def test_postgresql_tsv_in_and_csv_out_through_tailrace_run(home, pg, tmp_path, capsys):
    """The same family end to end through the `tailrace run` command itself."""
    from tailrace.cli.main import run as cli
    from tailrace.services import build_services

    table = unique("tr_pg")
    (home / "s3" / "dn" / "in").mkdir(parents=True)
    (home / "s3" / "dn" / "in" / "part-0").write_text("1\tann\n2\t\\N\n3\tx\\\ty\n")
    objects = [
        jdbc("Db", PG_JDBC, user="postgres"),
        {"id": "Tsv", "type": "TSV"},
        {"id": "Csv", "type": "CSV"},
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://dn/in/", "dataFormat": {"ref": "Tsv"}},
        {
            "id": "T",
            "type": "SqlDataNode",
            "database": {"ref": "Db"},
            "table": table,
            "createTableSql": f"CREATE TABLE {table} (id int primary key, name text)",
        },
        {"id": "Load", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
        {"id": "Out", "type": "S3DataNode", "filePath": "s3://dn/pg.csv", "dataFormat": {"ref": "Csv"}},
        {
            "id": "Dump",
            "type": "CopyActivity",
            "input": {"ref": "T"},
            "output": {"ref": "Out"},
            "dependsOn": {"ref": "Load"},
        },
    ]
    try:
        code = cli(
            ["run", str(dump(objects, tmp_path / "p.json")), "--until", "2012-12-25T00:00:00", "-q"],
            build_services,
        )
        assert code == 0, capsys.readouterr()
        assert (home / "s3" / "dn" / "pg.csv").read_text() == "1,ann\n2,\\N\n3,x\ty\n"
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_wrong_password_fails_each_retry_naming_the_object_and_hides_the_password(home, mysql, run_objects):
    objects = [
        jdbc("Db", MYSQL_JDBC, password="wrong-" + SECRET),
        {
            "id": "Q",
            "type": "SqlActivity",
            "database": {"ref": "Db"},
            "script": "SELECT 1",
            "maximumRetries": "2",
            "retryDelay": "2 minutes",
        },
    ]
    report = run_objects(objects)
    q = result(report, "Q")
    assert q.status == "FAILED" and q.attempts == 3
    assert (
        "object 'Db', field 'connectionString'" in q.error
        and "cannot connect to mysql://127.0.0.1:3306/test" in q.error
    )
    log = attempt_log(report, "Q")
    assert "Access denied" in log
    assert SECRET not in log and SECRET not in q.error


def test_unreachable_database_fails_with_a_clear_error(home, run_objects):
    objects = [
        jdbc("Down", "jdbc:postgresql://127.0.0.1:1/test", user="postgres"),
        {"id": "Q", "type": "SqlActivity", "database": {"ref": "Down"}, "script": "SELECT 1"},
    ]
    q = result(run_objects(objects, config="[databases]\nconnect_timeout = 2\n"), "Q")
    assert q.status == "FAILED"
    assert (
        "object 'Down', field 'connectionString'" in q.error
        and "cannot connect to postgresql://127.0.0.1:1" in q.error
    )


def test_missing_table_names_the_node_and_nothing_is_half_written(home, pg, run_objects):
    table = unique("tr_half")
    pg.execute(f"CREATE TABLE {table} (id int primary key, name text)")
    (home / "s3" / "dn" / "bad").mkdir(parents=True)
    # The third record repeats a key: the first two must not stay behind.
    (home / "s3" / "dn" / "bad" / "part-0").write_text("1\ta\n2\tb\n1\tagain\n")
    objects = [
        jdbc("Db", PG_JDBC, user="postgres"),
        {"id": "Tsv", "type": "TSV"},
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://dn/bad/", "dataFormat": {"ref": "Tsv"}},
        {"id": "T", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": table},
        {"id": "Load", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
        {"id": "Gone", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": unique("tr_missing")},
        {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://dn/never/", "dataFormat": {"ref": "Tsv"}},
        {"id": "Dump", "type": "CopyActivity", "input": {"ref": "Gone"}, "output": {"ref": "Out"}},
    ]
    try:
        report = run_objects(objects)
        load, dump_ = result(report, "Load"), result(report, "Dump")
        assert load.status == "FAILED" and "object 'T', field 'table'" in load.error
        assert "UniqueViolation" in load.error
        assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        assert dump_.status == "FAILED" and "object 'Gone', field 'table'" in dump_.error
        assert "does not exist" in dump_.error
        assert not (home / "s3" / "dn" / "never").exists()
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_unmapped_rds_instance_and_foreign_properties_are_refused(home, run_objects):
    objects = [
        {
            "id": "Rds",
            "type": "RdsDatabase",
            "rdsInstanceId": "nowhere",
            "username": "u",
            "*password": SECRET,
        },
        {"id": "A", "type": "SqlActivity", "database": {"ref": "Rds"}, "script": "SELECT 1"},
        {**jdbc("J", PG_JDBC + "?host=10.0.0.1", user="postgres")},
        {"id": "B", "type": "SqlActivity", "database": {"ref": "J"}, "script": "SELECT 1"},
        {**jdbc("O", "jdbc:oracle:thin:@db:1521:x")},
        {"id": "C", "type": "SqlActivity", "database": {"ref": "O"}, "script": "SELECT 1"},
    ]
    report = run_objects(objects)
    a, b, c = (result(report, n) for n in "ABC")
    assert "object 'Rds', field 'rdsInstanceId'" in a.error and "[databases.rds_instances]" in a.error
    assert "object 'J', field 'jdbcProperties'" in b.error and "'host' is not supported" in b.error
    assert "object 'O', field 'connectionString'" in c.error and "jdbc:oracle:thin" in c.error
    assert all(SECRET not in r.error for r in (a, b, c))


def test_the_metadata_database_is_refused_even_to_single_user_runs(home, pg, run_objects):
    """With the metadata on PostgreSQL, a definition naming that database fails (by address:
    localhost and 127.0.0.1 are one host); another database on the same server does not."""
    from tailrace.runtime.dbaccess import DatabaseAccess

    access = DatabaseAccess(metadata_url="postgresql+psycopg://postgres@localhost:5432/test")
    objects = [
        jdbc("Meta", PG_JDBC, user="postgres"),
        {"id": "Q", "type": "SqlActivity", "database": {"ref": "Meta"}, "script": "SELECT 1"},
        jdbc("Other", "jdbc:postgresql://127.0.0.1:5432/postgres", user="postgres"),
        {"id": "R", "type": "SqlActivity", "database": {"ref": "Other"}, "script": "SELECT 1"},
    ]
    report = run_objects(objects, databases=access)
    q = result(report, "Q")
    assert q.status == "FAILED" and "object 'Meta', field 'connectionString'" in q.error
    assert "tailrace's own metadata database" in q.error
    assert result(report, "R").status == "FINISHED"


def test_connection_properties_that_tune_a_connection_are_used(home, pg, mysql, run_objects):
    schema, table = unique("tr_schema"), unique("tr_t")
    pg.execute(f"CREATE SCHEMA {schema}")
    objects = [
        {
            **jdbc("Pg", PG_JDBC + "?connectTimeout=5", user="postgres"),
            "jdbcProperties": [f"currentSchema={schema}"],
        },
        {
            "id": "InSchema",
            "type": "SqlActivity",
            "database": {"ref": "Pg"},
            "script": f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (7)",
        },
        {**jdbc("My", MYSQL_JDBC), "jdbcProperties": ["connectTimeout=5000", "useSSL=false"]},
        {"id": "OnMysql", "type": "SqlActivity", "database": {"ref": "My"}, "script": "SELECT 1"},
    ]
    try:
        report = run_objects(objects)
        assert result(report, "InSchema").status == "FINISHED", result(report, "InSchema").error
        assert result(report, "OnMysql").status == "FINISHED", result(report, "OnMysql").error
        assert pg.execute(f"SELECT id FROM {schema}.{table}").fetchall() == [(7,)]
    finally:
        pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_mysql_copy_is_all_or_nothing(home, mysql, run_objects):
    table = unique("tr_half")
    mysql.cursor().execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(9)) ENGINE=InnoDB")
    (home / "s3" / "dn" / "dup").mkdir(parents=True)
    (home / "s3" / "dn" / "dup" / "part-0").write_text(
        "".join(f"{i}\tn{i}\n" for i in range(1500)) + "7\tagain\n"
    )
    objects = [
        jdbc("Db", MYSQL_JDBC),
        {"id": "Tsv", "type": "TSV"},
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://dn/dup/", "dataFormat": {"ref": "Tsv"}},
        {"id": "T", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": table},
        {"id": "Load", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "T"}},
    ]
    try:
        load = result(run_objects(objects), "Load")
        assert load.status == "FAILED" and "object 'T', field 'table'" in load.error
        assert "Duplicate entry" in load.error
        cur = mysql.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        assert cur.fetchone()[0] == 0  # the first batch of 1,000 was rolled back too
    finally:
        mysql.cursor().execute(f"DROP TABLE IF EXISTS {table}")


def test_sql_activity_script_from_the_store_with_arguments(home, mysql, run_objects):
    """A script in S3 is not expression-evaluated; scriptArgument values fill its ?s."""
    table = unique("tr_script")
    (home / "s3" / "dn").mkdir(parents=True)
    (home / "s3" / "dn" / "load.sql").write_text(
        f"CREATE TABLE {table} (day VARCHAR(10), note VARCHAR(40));\n"
        f"# a MySQL comment; it has a semicolon\nINSERT INTO {table} VALUES (?, '#{{kept}}');\n"
    )
    objects = [
        jdbc("Db", MYSQL_JDBC),
        {
            "id": "Run",
            "type": "SqlActivity",
            "database": {"ref": "Db"},
            "scriptUri": "s3://dn/load.sql",
            "scriptArgument": "#{format(@scheduledStartTime,'YYYY-MM-dd')}",
        },
    ]
    try:
        run = result(run_objects(objects), "Run")
        assert run.status == "FINISHED", run.error
        cur = mysql.cursor()
        cur.execute(f"SELECT day, note FROM {table}")
        assert cur.fetchall() == (("2012-12-24", "#{kept}"),)
    finally:
        mysql.cursor().execute(f"DROP TABLE IF EXISTS {table}")
