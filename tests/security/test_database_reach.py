"""Owners and databases on the service (`tailrace up` as root, two owners): a database or a
DynamoDB table is reached only when [databases] allows it for the pipeline's owner, by address
(a host name is no way around a refused IP), and a password never reaches an answer or a log."""

from __future__ import annotations

from typing import Any

import pytest
from security_helpers import Server

PASSWORD = "db-password-never-shown-41c7"


def sql(url: str, script: str = "SELECT 1", **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": "Db",
            "type": "JdbcDatabase",
            "connectionString": url,
            "jdbcDriverClass": "org.postgresql.Driver",
            "username": "postgres",
            "*password": PASSWORD,
            **extra,
        },
        {"id": "Attack", "type": "SqlActivity", "database": {"ref": "Db"}, "script": script},
    ]


def ended(server: Server, owner: str, objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    out = server.run(owner, objects, "Attack", name=name)
    shown = out.get("errorMessage", "") + out["log"]
    assert PASSWORD not in shown, f"{name}: the password reached the answer or the attempt log"
    for secret in server.secrets():
        assert secret not in shown
    return out


def test_the_owner_the_configuration_allows_reaches_its_database(server: Server) -> None:
    out = ended(server, "alice", sql("jdbc:postgresql://127.0.0.1:5432/test"), "alice-db")
    assert out["@status"] == "FINISHED", out


@pytest.mark.parametrize(
    ("name", "objects", "said"),
    [
        ("pg-of-alice", sql("jdbc:postgresql://127.0.0.1:5432/test"), "is not allowed for owner 'mallory'"),
        ("pg-by-name", sql("jdbc:postgresql://localhost:5432/test"), "is not allowed for owner 'mallory'"),
        (
            "pg-other-db",
            sql("jdbc:postgresql://127.0.0.1:5432/postgres"),
            "is not allowed for owner 'mallory'",
        ),
        ("mysql", sql("jdbc:mysql://127.0.0.1:3306/test"), "is not allowed for owner 'mallory'"),
        (
            "host-in-properties",
            sql("jdbc:postgresql://127.0.0.1:5432/test", jdbcProperties=["host=10.1.1.1"]),
            "is not allowed for owner 'mallory'",
        ),
        (
            "rds-unmapped",
            [
                {
                    "id": "Db",
                    "type": "RdsDatabase",
                    "rdsInstanceId": "prod",
                    "username": "u",
                    "*password": PASSWORD,
                },
                {"id": "Attack", "type": "SqlActivity", "database": {"ref": "Db"}, "script": "SELECT 1"},
            ],
            "[databases.rds_instances]",
        ),
        (
            "dynamodb-table-of-alice",
            [
                {"id": "T", "type": "DynamoDBDataNode", "tableName": "alice_orders"},
                {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://mallory-loot/ddb/"},
                {"id": "Attack", "type": "HiveCopyActivity", "input": {"ref": "T"}, "output": {"ref": "Out"}},
            ],
            "DynamoDB table 'alice_orders' is not allowed for owner 'mallory'",
        ),
    ],
)
def test_another_owner_is_refused_with_a_clear_error(
    server: Server, name: str, objects: list[dict[str, Any]], said: str
) -> None:
    out = ended(server, "mallory", objects, f"reach-{name}")
    assert out["@status"] == "FAILED", out
    shown = out.get("errorMessage", "") + out["log"]
    assert said in shown, shown[-1500:]
    assert not (server.home / "s3" / "mallory-loot" / "ddb").exists()
