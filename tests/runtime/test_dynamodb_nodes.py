"""DynamoDBDataNode, DynamoDBTableExists and DynamoDBDataExists through boto3 against a moto
server over HTTP; HiveCopyActivity between DynamoDB and S3, and RedshiftCopyActivity from
DynamoDB into PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from dbhelpers import PG_JDBC, attempt_log, result, unique


@pytest.fixture
def ddb(dynamodb_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def config(dynamodb_url: str) -> str:
    return f'dynamodb_endpoint_url = "{dynamodb_url}"\naws_access_key_id = "test"\naws_secret_access_key = "test"\n'


def make_table(ddb: Any, items: list[dict[str, Any]] = ()) -> str:
    name = unique("tr_ddb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in items:
        ddb.put_item(TableName=name, Item=item)
    return name


ITEMS = [
    {"id": {"S": "a"}, "ts": {"N": "100"}, "tags": {"SS": ["x", "y"]}},
    {"id": {"S": "b"}, "ts": {"N": "200"}, "name": {"S": "bee"}, "blob": {"B": b"\x00\xffz"}},
    {"id": {"S": "c"}, "ts": {"N": "300"}, "name": {"S": "sea, salt"}},
]


def test_preconditions_gate_an_activity(home, ddb, config, run_objects):
    full, empty = make_table(ddb, ITEMS), make_table(ddb)
    objects = [
        {"id": "HasTable", "type": "DynamoDBTableExists", "role": "r", "tableName": full},
        {"id": "HasData", "type": "DynamoDBDataExists", "role": "r", "tableName": full},
        {
            "id": "EmptyHasData",
            "type": "DynamoDBDataExists",
            "role": "r",
            "tableName": empty,
            "preconditionTimeout": "1 hour",
        },
        {
            "id": "Ok",
            "type": "ShellCommandActivity",
            "command": "true",
            "precondition": [{"ref": "HasTable"}, {"ref": "HasData"}],
        },
        {
            "id": "Blocked",
            "type": "ShellCommandActivity",
            "command": "true",
            "precondition": {"ref": "EmptyHasData"},
        },
    ]
    report = run_objects(objects, config=config)
    assert result(report, "Ok").status == "FINISHED"
    assert result(report, "Blocked").status != "FINISHED"
    assert "DynamoDBDataExists " + empty + ": False" in attempt_log(report, "EmptyHasData")


def test_hive_copy_dynamodb_to_s3_and_back_with_filter(home, ddb, config, run_objects):
    source, target = make_table(ddb, ITEMS), make_table(ddb)
    objects = [
        {"id": "Export", "type": "DynamoDBExportDataFormat", "column": ["ts BIGINT"]},
        {"id": "Src", "type": "DynamoDBDataNode", "tableName": source, "dataFormat": {"ref": "Export"}},
        {
            "id": "Dump",
            "type": "S3DataNode",
            "directoryPath": "s3://ddb/dump/",
            "dataFormat": {"ref": "Export"},
        },
        {
            "id": "Out",
            "type": "HiveCopyActivity",
            "input": {"ref": "Src"},
            "output": {"ref": "Dump"},
            "filterSql": "ts >= 200",
        },
        {"id": "Dst", "type": "DynamoDBDataNode", "tableName": target},
        {
            "id": "Back",
            "type": "HiveCopyActivity",
            "input": {"ref": "Dump"},
            "output": {"ref": "Dst"},
            "dependsOn": {"ref": "Out"},
        },
    ]
    report = run_objects(objects, config=config)
    assert not report.failed, [(r.instance.component_id, r.error) for r in report.results]
    lines = (home / "s3" / "ddb" / "dump" / "000000_0").read_text().splitlines()
    assert sorted(json.loads(line)["Item"]["id"]["S"] for line in lines) == ["b", "c"]
    b = next(json.loads(line)["Item"] for line in lines if '"b"' in line)
    assert b["blob"] == {"B": "AP96"} and b["ts"] == {"N": "200"}  # binary as base64, as DynamoDB JSON has it
    copied = ddb.scan(TableName=target)["Items"]
    assert sorted(copied, key=lambda i: i["id"]["S"]) == ITEMS[1:]


def test_dynamodb_to_csv_columns_name_the_attributes(home, ddb, config, run_objects):
    source = make_table(ddb, ITEMS)
    objects = [
        {"id": "Src", "type": "DynamoDBDataNode", "tableName": source},
        {"id": "Csv", "type": "CSV", "column": ["id STRING", "name STRING", "ts INT"]},
        {"id": "Dump", "type": "S3DataNode", "directoryPath": "s3://ddb/csv/", "dataFormat": {"ref": "Csv"}},
        {"id": "Out", "type": "HiveCopyActivity", "input": {"ref": "Src"}, "output": {"ref": "Dump"}},
    ]
    report = run_objects(objects, config=config)
    assert result(report, "Out").status == "FINISHED", result(report, "Out").error
    got = sorted((home / "s3" / "ddb" / "csv" / "000000_0").read_text().splitlines())
    assert got == ["a,\\N,100", "b,bee,200", "c,sea\\, salt,300"]


def test_missing_table_fails_naming_the_node_and_writes_nothing(home, ddb, config, run_objects):
    objects = [
        {"id": "Src", "type": "DynamoDBDataNode", "tableName": unique("tr_absent")},
        {"id": "Dump", "type": "S3DataNode", "directoryPath": "s3://ddb/none/"},
        {
            "id": "Out",
            "type": "HiveCopyActivity",
            "input": {"ref": "Src"},
            "output": {"ref": "Dump"},
            "maximumRetries": "1",
        },
    ]
    out = result(run_objects(objects, config=config), "Out")
    assert out.status == "FAILED" and out.attempts == 2
    assert "object 'Src', field 'tableName'" in out.error and "does not exist" in out.error
    assert not (home / "s3" / "ddb" / "none").exists()


def test_unreachable_endpoint_is_a_clear_error(home, run_objects):
    config = (
        'dynamodb_endpoint_url = "http://127.0.0.1:1"\naws_access_key_id = "k"\naws_secret_access_key = "s"\n'
    )
    objects = [
        {"id": "Has", "type": "DynamoDBTableExists", "role": "r", "tableName": "t"},
        {"id": "A", "type": "ShellCommandActivity", "command": "true", "precondition": {"ref": "Has"}},
    ]
    report = run_objects(objects, config=config + "[databases]\nconnect_timeout = 1\n")
    has = result(report, "Has")
    assert has.status == "FAILED" and "cannot reach DynamoDB at http://127.0.0.1:1" in has.error


def test_redshift_copy_from_dynamodb_matches_attributes_to_columns(home, ddb, config, pg, run_objects):
    source = make_table(ddb, ITEMS)
    table = unique("tr_ddb_rs")
    pg.execute(f"CREATE TABLE {table} (id text primary key, name text, ts int)")
    objects = [
        {"id": "Src", "type": "DynamoDBDataNode", "tableName": source},
        {
            "id": "Pg",
            "type": "RedshiftDatabase",
            "connectionString": PG_JDBC,
            "username": "postgres",
            "*password": "x",
        },
        {"id": "Dest", "type": "RedshiftDataNode", "database": {"ref": "Pg"}, "tableName": table},
        {
            "id": "Load",
            "type": "RedshiftCopyActivity",
            "input": {"ref": "Src"},
            "output": {"ref": "Dest"},
            "insertMode": "OVERWRITE_EXISTING",
        },
    ]
    try:
        load = result(run_objects(objects, config=config), "Load")
        assert load.status == "FINISHED", load.error
        got = pg.execute(f"SELECT id, name, ts FROM {table} ORDER BY id").fetchall()
        assert got == [("a", None, 100), ("b", "bee", 200), ("c", "sea, salt", 300)]
    finally:
        pg.execute(f"DROP TABLE IF EXISTS {table}")


def test_exists_on_a_dynamodb_node_gates_its_copy(home, ddb, config, run_objects):
    """The Guide's DynamoDBDataFormat example guards its DynamoDBDataNode with Exists."""
    there, absent = make_table(ddb, ITEMS[:1]), unique("tr_absent")
    objects = [{"id": "E", "type": "Exists", "preconditionTimeout": "1 hour"}]
    for name, table in (("There", there), ("Absent", absent)):
        objects += [
            {
                "id": f"{name}Node",
                "type": "DynamoDBDataNode",
                "tableName": table,
                "precondition": {"ref": "E"},
            },
            {"id": f"{name}Out", "type": "S3DataNode", "directoryPath": f"s3://ddb/{name}/"},
            {
                "id": name,
                "type": "HiveCopyActivity",
                "input": {"ref": f"{name}Node"},
                "output": {"ref": f"{name}Out"},
            },
        ]
    report = run_objects(objects, config=config)
    assert result(report, "There").status == "FINISHED", result(report, "There").error
    assert result(report, "Absent").status != "FINISHED"
    assert (home / "s3" / "ddb" / "There" / "000000_0").exists()
    assert not (home / "s3" / "ddb" / "Absent").exists()
