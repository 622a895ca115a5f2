"""Attacks by a second owner (mallory) against `tailrace up` started as root, with a victim
(alice) holding data. None may read a secret, a file outside its namespace or alice's data; each
is refused with a clear error in the attempt log or in the API's answer.

Every attack pipeline is started first (they run in parallel on the embedded workers); each test
then waits for its own outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from security_helpers import SERVER_SECRET, Server

ALICE_ROW = "alice-private-row-5d1e"
JDBC = {
    "id": "Db",
    "type": "JdbcDatabase",
    "jdbcDriverClass": "org.sqlite.JDBC",
    "username": "u",
    "*password": "p",
}


def s3_node(oid: str, uri: str, *, file: bool = False) -> dict[str, Any]:
    return {"id": oid, "type": "S3DataNode", ("filePath" if file else "directoryPath"): uri}


def shell(command: str, **fields: Any) -> dict[str, Any]:
    return {"id": "Attack", "type": "ShellCommandActivity", "command": command, **fields}


def copy_from(uri: str, *, file: bool = True) -> list[dict[str, Any]]:
    return [
        s3_node("In", uri, file=file),
        s3_node("Out", "s3://mallory-loot/copied/"),
        {"id": "Attack", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Out"}},
    ]


def hive(script: str) -> list[dict[str, Any]]:
    return [{"id": "Attack", "type": "HiveActivity", "hiveScript": script, "stage": "false"}]


def attacks(home: Path, victim_file: Path) -> dict[str, list[dict[str, Any]]]:
    creds = home / "credentials.json"
    return {
        "shell-reads-secrets": [
            shell(
                f"id -u; cat {creds}; cat {home}/tailrace.db | head -c 4000; env; ls -la {home}; "
                "cat /proc/1/environ; cat /proc/$PPID/environ; echo HOME=$HOME; true"
            )
        ],
        "shell-reaches-local-services": [
            # PostgreSQL trusts local connections and Redis has no password on this host: from the
            # host's network or sockets, an owner's command could read every owner's metadata.
            shell(
                "psql -h 127.0.0.1 -U postgres -d test -Atc \"select 'PG-'||'REACHED'\"; "
                "psql -h /run/postgresql -U postgres -d test -Atc \"select 'PG-'||'REACHED'\"; "
                "redis-cli -h 127.0.0.1 ping; echo RUN=$(ls -A /run | tr '\\n' ' '); true"
            )
        ],
        "shell-writes-alice-bucket": [
            shell(
                f"echo pwned > {home}/s3/alice-data/private/part-0; echo pwned > {home}/s3/alice-data/new; true"
            )
        ],
        "shell-output-symlink": [
            s3_node("Out", "s3://mallory-loot/link/"),
            shell(f"ln -s {creds} $OUTPUT1_STAGING_DIR/creds", stage="true", output={"ref": "Out"}),
        ],
        "shell-output-dir-symlink": [
            s3_node("Out", "s3://mallory-loot/dirlink/"),
            shell(f"ln -s {home} $OUTPUT1_STAGING_DIR/home", stage="true", output={"ref": "Out"}),
        ],
        "shell-output-hardlink": [
            s3_node("Out", "s3://mallory-loot/hard/"),
            shell(
                f"ln {creds} $OUTPUT1_STAGING_DIR/creds; ls $OUTPUT1_STAGING_DIR",
                stage="true",
                output={"ref": "Out"},
            ),
        ],
        "shell-script-from-credentials": [
            {"id": "Attack", "type": "ShellCommandActivity", "scriptUri": f"file://{creds}"}
        ],
        "shell-stdout-to-local-file": [shell("echo pwned", stdout=f"file://{victim_file}")],
        "shell-script-from-alice-bucket": [
            {"id": "Attack", "type": "ShellCommandActivity", "scriptUri": "s3://alice-data/private/part-0"}
        ],
        "hive-pre-script-from-alice-bucket": [
            {"id": "Pre", "type": "ShellScriptConfig", "scriptUri": "s3://alice-data/private/part-0"},
            {
                "id": "Attack",
                "type": "HiveActivity",
                "hiveScript": "SELECT 1",
                "stage": "false",
                "preActivityTaskConfig": {"ref": "Pre"},
            },
        ],
        "legit-copy-from-allowed-dir": [
            s3_node("In", f"file://{home.parent}/shared/in/ok.tsv", file=True),
            s3_node("Out", "s3://mallory-own/ok/"),
            {"id": "Attack", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Out"}},
        ],
        "copy-link-in-allowed-dir": copy_from(f"file://{home.parent}/shared/in/", file=False),
        "copy-local-credentials": copy_from(str(creds)),
        "copy-file-uri-credentials": copy_from(f"file://{creds}"),
        "copy-dotdot-bucket": copy_from("s3://../credentials.json"),
        "copy-encoded-dotdot": copy_from("s3://mallory-b/%2e%2e/%2e%2e/credentials.json"),
        "copy-encoded-bucket": copy_from("s3://%2e%2e/credentials.json"),
        "copy-backslash": copy_from("s3://mallory-b/..%5c..%5ccredentials.json"),
        "copy-absolute-key": copy_from("s3://mallory-b//etc/passwd"),
        "copy-nul": copy_from("s3://mallory-b/a%00b"),
        "copy-long-key": copy_from("s3://mallory-b/" + "a/" * 700 + "x"),
        "copy-alice-bucket": copy_from("s3://alice-data/private/", file=False),
        "hive-read-text": hive(f"SELECT read_text('{creds}')"),
        "hive-read-csv": hive(f"SELECT * FROM read_csv('{creds}')"),
        "hive-getenv": hive("SELECT getenv('TAILRACE_TEST_SERVER_SECRET')"),
        "hive-database-in-alice-bucket": hive(
            "CREATE DATABASE evil LOCATION 's3://alice-data/evil/'; CREATE TABLE evil.tbl (v STRING); "
            "INSERT OVERWRITE TABLE evil.tbl SELECT 'pwned'"
        ),
        "hive-env-variable": hive("SELECT '${env:TAILRACE_TEST_SERVER_SECRET}', '${system:user.name}'"),
        "hive-path-as-table": hive("SELECT * FROM '/etc/passwd'"),
        "hive-query-fn": hive(f"SELECT * FROM query('SELECT * FROM read_text(''{creds}'')')"),
        "hive-attach": hive("ATTACH '/tmp/tailrace-attack.db' AS x"),
        "hive-copy-to": hive("COPY (SELECT 1) TO '/tmp/tailrace-attack.csv'"),
        "hive-export": hive("EXPORT DATABASE '/tmp/tailrace-attack-export'"),
        "hive-pragma": hive("PRAGMA database_list"),
        "hive-install": hive("INSTALL httpfs"),
        "hive-load": hive("LOAD httpfs"),
        "hive-set-external": hive(f"SET enable_external_access=true; SELECT read_text('{creds}')"),
        "hive-local-location": hive(
            "CREATE EXTERNAL TABLE etc (l STRING) LOCATION 'file:///etc/'; SELECT * FROM etc"
        ),
        "hive-alice-location": hive(
            "CREATE EXTERNAL TABLE stolen (v STRING) LOCATION 's3://alice-data/tbl/'; SELECT * FROM stolen"
        ),
        "hive-overwrite-alice-table": hive("INSERT OVERWRITE TABLE secrets_tbl SELECT 'pwned'"),
        "hive-read-alice-table": hive("SELECT * FROM default.secrets_tbl"),
        "jdbc-sqlite-metadata": [
            {**JDBC, "connectionString": f"jdbc:sqlite:{home}/tailrace.db"},
            {
                "id": "Attack",
                "type": "SqlActivity",
                "database": {"ref": "Db"},
                "script": "SELECT secret_access_key FROM access_keys",
            },
        ],
        "jdbc-duckdb-read-text": [
            {**JDBC, "connectionString": "jdbc:duckdb::memory:"},
            {
                "id": "Attack",
                "type": "SqlActivity",
                "database": {"ref": "Db"},
                "script": f"CREATE TABLE t AS SELECT * FROM read_text('{creds}')",
            },
        ],
        "log-uri-proc-environ": [shell("echo hello", pipelineLogUri="file:///proc/self/environ?")],
        "log-uri-overwrite-file": [shell("echo hello", pipelineLogUri=f"file://{victim_file}?")],
        "log-uri-alice-bucket": [shell("echo hello", pipelineLogUri="s3://alice-data/logs/")],
    }


# What the error (or the attempt log) must say, per attack.
REFUSED = {
    "shell-output-symlink": "link",
    "shell-output-dir-symlink": "link",
    "shell-script-from-credentials": "local paths are not allowed",
    "shell-stdout-to-local-file": "local paths are not allowed",
    "shell-script-from-alice-bucket": "belongs to another owner",
    "hive-pre-script-from-alice-bucket": "belongs to another owner",
    "copy-link-in-allowed-dir": "planted.tsv",
    "copy-local-credentials": "local paths are not allowed",
    "copy-file-uri-credentials": "local paths are not allowed",
    "copy-dotdot-bucket": "bucket name '..'",
    "copy-encoded-dotdot": "'..' segment",
    "copy-encoded-bucket": "bucket name '..'",
    "copy-backslash": "backslash",
    "copy-absolute-key": "absolute",
    "copy-nul": "NUL",
    "copy-long-key": "longer than 1024 bytes",
    "copy-alice-bucket": "belongs to another owner",
    "jdbc-sqlite-metadata": "tailrace's own metadata database",
    "jdbc-duckdb-read-text": "disabled by configuration",
    "hive-read-text": "read_text() is not available",
    "hive-read-csv": "read_csv() is not available",
    "hive-getenv": "getenv() is not available",
    "hive-path-as-table": "is not a table name",
    "hive-query-fn": "query() is not available",
    "hive-attach": "not supported",
    "hive-copy-to": "not supported",
    "hive-export": "not supported",
    "hive-pragma": "not supported",
    "hive-install": "not supported",
    "hive-load": "not supported",
    "hive-set-external": "read_text() is not available",
    "hive-local-location": "local paths are not allowed",
    "hive-alice-location": "belongs to another owner",
    "hive-database-in-alice-bucket": "belongs to another owner",
    "hive-overwrite-alice-table": "Table not found",
    "hive-read-alice-table": "Table not found",
}


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Alice's data first (a file in her bucket, a Hive table), then every attack started."""
    alice_objects = [
        s3_node("Out", "s3://alice-data/private/"),
        {
            "id": "Write",
            "type": "ShellCommandActivity",
            "command": f"echo {ALICE_ROW} > $OUTPUT1_STAGING_DIR/part-0",
            "stage": "true",
            "output": {"ref": "Out"},
        },
        {
            "id": "Table",
            "type": "HiveActivity",
            "stage": "false",
            "dependsOn": {"ref": "Write"},
            "hiveScript": "CREATE EXTERNAL TABLE secrets_tbl (v STRING) LOCATION 's3://alice-data/tbl/'; "
            f"INSERT OVERWRITE TABLE secrets_tbl SELECT '{ALICE_ROW}'",
        },
    ]
    alice = server.run("alice", alice_objects, "Table", name="alice-data")
    assert alice["@status"] == "FINISHED", alice
    victim = tmp_path_factory.mktemp("victim") / "victim.txt"
    victim.write_text("precious\n")
    started = {
        name: server.start("mallory", objs, name) for name, objs in attacks(server.home, victim).items()
    }
    return {"started": started, "victim": victim}


def outcome(server: Server, world: dict[str, Any], name: str) -> dict[str, str]:
    result = server.outcome("mallory", world["started"][name], "Attack")
    shown = result.get("errorMessage", "") + result["log"]
    for secret in server.secrets():
        assert secret not in shown, f"{name}: a secret reached the answer or the attempt log"
    return result


def alice_data_intact(server: Server) -> None:
    assert (server.home / "s3/alice-data/private/part-0").read_text().strip() == ALICE_ROW
    assert not (server.home / "s3/alice-data/new").exists()
    assert not (server.home / "s3/alice-data/logs").exists()
    assert not (server.home / "s3/alice-data/evil").exists()
    rows = "".join(p.read_text() for p in (server.home / "s3/alice-data/tbl").rglob("*") if p.is_file())
    assert ALICE_ROW in rows and "pwned" not in rows


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_attack_is_refused_with_a_clear_error(server: Server, world: dict[str, Any], name: str) -> None:
    result = outcome(server, world, name)
    assert result["@status"] == "FAILED", (name, result)
    said = result.get("errorMessage", "") + result["log"]
    assert REFUSED[name].lower() in said.lower(), (name, said[-2000:])
    loot = server.home / "s3" / "mallory-loot"
    copied = [p for p in loot.rglob("*") if p.is_file()] if loot.exists() else []
    assert not any(s.encode() in p.read_bytes() for p in copied for s in server.secrets()), name
    alice_data_intact(server)


def test_shell_runs_unprivileged_with_a_scrubbed_environment(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "shell-reads-secrets")
    log = result["log"]
    uid = next(line.strip() for line in log.splitlines() if line.strip().isdigit())  # `id -u`
    assert uid != "0", log[:500]
    assert "Permission denied" in log
    assert "TAILRACE_TEST_SERVER_SECRET" not in log and "TAILRACE_HOME" not in log
    home_line = next(line for line in log.splitlines() if line.startswith("HOME="))
    assert str(server.home) not in home_line


def test_shell_reaches_no_local_database_or_cache(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "shell-reaches-local-services")
    log = result["log"]
    assert result["@status"] == "FINISHED", log[-2000:]
    assert "PG-REACHED" not in log and "PONG" not in log, log[-2000:]
    run_line = next(line for line in log.splitlines() if line.startswith("RUN="))
    assert "postgresql" not in run_line, run_line  # a private, empty /run


def test_what_an_owner_is_allowed_still_works(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "legit-copy-from-allowed-dir")
    assert result["@status"] == "FINISHED", result
    assert [p.read_text() for p in (server.home / "s3/mallory-own/ok").rglob("*") if p.is_file()] == ["1\n"]


def test_shell_cannot_write_into_another_owners_bucket(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "shell-writes-alice-bucket")
    # Refused by permissions, or not even visible (a private /tmp hides a home under /tmp).
    assert "Permission denied" in result["log"] or "No such file or directory" in result["log"]
    alice_data_intact(server)


def test_shell_output_hard_link_is_not_uploaded(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "shell-output-hardlink")
    # Linking another user's file fails (protected hard links); if it did not, collection refuses it.
    assert result["@status"] == "FAILED" or not (server.home / "s3/mallory-loot/hard/creds").exists()


def test_hive_variables_never_read_the_server_environment(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "hive-env-variable")  # no secret in the answer or the log
    assert result["@status"] == "FINISHED", result
    # Left unreplaced, as Hive leaves a variable it does not know (the statement is logged).
    assert "${env:TAILRACE_TEST_SERVER_SECRET}" in result["log"], result["log"][-2000:]


def test_log_uri_never_serves_the_server_environment(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "log-uri-proc-environ")
    pid = world["started"]["log-uri-proc-environ"]
    status, body = server.rest("mallory", f"/api/v1/pipelines/{pid}/attempts/{result['@headAttempt']}/log")
    assert status != 200 and b"refused" in body
    assert SERVER_SECRET.encode() not in body


def test_log_uri_never_overwrites_a_local_file(server: Server, world: dict[str, Any]) -> None:
    outcome(server, world, "log-uri-overwrite-file")
    outcome(server, world, "shell-stdout-to-local-file")
    assert world["victim"].read_text() == "precious\n"


def test_log_uri_in_another_owners_bucket_is_not_written(server: Server, world: dict[str, Any]) -> None:
    outcome(server, world, "log-uri-alice-bucket")
    alice_data_intact(server)


def test_unmapped_owner_is_refused_shell_with_how_to_configure(server: Server) -> None:
    # Three owners hold keys (default, alice, mallory); 'default' has no OS user mapped.
    server.keys["default"] = server.admin
    result = server.run("default", [shell("id -u")], "Attack", name="unmapped")
    assert result["@status"] == "FAILED"
    assert "[execution.users]" in result["errorMessage"] and "docs/security.md" in result["errorMessage"]
