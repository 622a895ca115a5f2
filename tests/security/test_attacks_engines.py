"""Attacks by a second owner (mallory) on the Hive engine of `tailrace up` (run as root, see
security_helpers): one live attack per hole the engines' red-team pass found, each refused with
a clear error in the attempt log, alice's table intact and no secret or server path shown.
The engine-level tests are in tests/engines/test_hive_sandbox_attacks.py."""

from __future__ import annotations

from typing import Any

import pytest
from security_helpers import Server

ALICE_ROW = "alice-engine-row-8c2f"

# SET of the time zone was pasted into DuckDB's SQL: this one printed DuckDB's allowed
# directories (the server's paths) through current_setting, which scripts may not call.
ZONE = "UTC', to_timestamp(0)), 'x') || current_setting('allowed_directories')::VARCHAR || strftime(timezone('UTC"


FIELD = 'a" || current_setting("allowed_directories") || "s"."a'


def hive(script: str) -> list[dict[str, Any]]:
    return [{"id": "Attack", "type": "HiveActivity", "hiveScript": script, "stage": "false"}]


def attacks(server: Server) -> dict[str, tuple[list[dict[str, Any]], str]]:
    creds = server.home / "credentials.json"
    return {
        "time-zone-injection": (
            hive(f"SET hive.local.time.zone={ZONE}; SELECT from_unixtime(0)"),
            "Unknown TimeZone",
        ),
        "cte-reaches-duckdb-catalog": (
            hive(
                "SELECT d.* FROM (WITH duckdb_settings AS (SELECT 1 a) SELECT 1 b) s "
                "JOIN duckdb_settings d ON (true)"
            ),
            "Table not found 'duckdb_settings'",
        ),
        "deep-nesting": (hive("SELECT " + "(" * 3000 + "1" + ")" * 3000), "nested too deeply"),
        "map-using": (hive("MAP ('a') USING 'cat' AS x"), "cannot parse this statement"),
        "transform-using": (
            hive(f"SELECT TRANSFORM('a') USING 'cat {creds}' AS x"),
            "TRANSFORM ... USING runs programs",
        ),
        "cli-shell-escape": (hive(f"!cat {creds}"), "Hive CLI command '!' is not supported"),
        "cli-source": (hive(f"source {creds}"), "Hive CLI command 'source' is not supported"),
        # A struct field's name went into DuckDB's SQL unescaped; now it is only a name.
        "struct-field-name": (
            hive(
                f"CREATE TABLE st (s struct<`{FIELD}`:string, b:string>); "
                f"INSERT OVERWRITE TABLE st SELECT named_struct('{FIELD}', 'x', 'b', 'y'); "
                "SELECT s.b FROM st"
            ),
            "",
        ),
        # held: alice's namespace by its stored name
        "alice-namespace-by-name": (
            hive("SELECT * FROM `alice/default`.engines_tbl"),
            "may not contain '/'",
        ),
    }


NAMES = [
    "alice-namespace-by-name",
    "cli-shell-escape",
    "cli-source",
    "cte-reaches-duckdb-catalog",
    "deep-nesting",
    "map-using",
    "time-zone-injection",
    "transform-using",
]


@pytest.fixture(scope="module")
def engine_world(server: Server) -> dict[str, tuple[str, str]]:
    alice = server.run(
        "alice",
        hive(
            "CREATE EXTERNAL TABLE engines_tbl (v STRING) LOCATION 's3://alice-engines/tbl/'; "
            f"INSERT OVERWRITE TABLE engines_tbl SELECT '{ALICE_ROW}'"
        ),
        "Attack",
        name="alice-engines",
    )
    assert alice["@status"] == "FINISHED", alice
    return {
        name: (server.start("mallory", objects, name), message)
        for name, (objects, message) in attacks(server).items()
    }


@pytest.mark.parametrize("name", NAMES)
def test_engine_attack_is_refused_in_hive_terms(
    server: Server, engine_world: dict[str, tuple[str, str]], name: str
) -> None:
    pid, message = engine_world[name]
    result = server.outcome("mallory", pid, "Attack")
    shown = result.get("errorMessage", "") + result["log"]
    assert result["@status"] == "FAILED", (name, result)
    assert message in shown, (name, shown[-2000:])
    for secret in server.secrets():
        assert secret not in shown, f"{name}: a secret reached the answer or the attempt log"
    # No internal error (its stack trace names the server's files) and no DuckDB setting.
    assert "internal error" not in shown and not result.get("errorStackTrace"), (name, shown[-2000:])
    # The injected time zone printed DuckDB's allowed directories: the owner's warehouse path.
    assert "warehouse-owners" not in shown, (name, shown[-2000:])
    rows = "".join(p.read_text() for p in (server.home / "s3/alice-engines/tbl").rglob("*") if p.is_file())
    assert rows.strip() == ALICE_ROW


def test_a_struct_field_name_reaches_duckdb_only_as_a_name(
    server: Server, engine_world: dict[str, tuple[str, str]]
) -> None:
    result = server.outcome("mallory", engine_world["struct-field-name"][0], "Attack")
    assert result["@status"] == "FINISHED", result
    assert "warehouse-owners" not in result["log"] and "internal error" not in result["log"]
