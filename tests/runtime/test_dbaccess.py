"""The [databases] reach rules, decided by address: unit tests of tailrace.runtime.dbaccess."""

from __future__ import annotations

import pytest

from tailrace.config import DatabaseSettings, load_settings
from tailrace.errors import ConfigError
from tailrace.runtime.dbaccess import DatabaseAccess, Endpoint, ReachRefused

PG = Endpoint("postgresql", "127.0.0.1", "127.0.0.1", 5432, "alice_logs")


def access(**allowed: str) -> DatabaseAccess:
    return DatabaseAccess(settings=DatabaseSettings(allowed=allowed))


@pytest.mark.parametrize(
    "rule",
    ["127.0.0.1", "localhost", "127.0.0.1:5432", "localhost:5432/alice_logs", "*:5432/alice_*", "*"],
)
def test_rules_that_allow(rule):
    access(alice=rule).check("alice", PG)


@pytest.mark.parametrize(
    "rule", ["", "127.0.0.1:3306", "127.0.0.1/bob_*", "10.0.0.1", "no-such-host.invalid"]
)
def test_rules_that_do_not(rule):
    with pytest.raises(ReachRefused, match=r"not allowed for owner 'alice'.*\[databases.allowed\] alice ="):
        access(alice=rule).check("alice", PG)


def test_a_rule_for_every_owner_and_one_owners_rule_apply_to_no_one_else():
    both = access(**{"*": "127.0.0.1:5432/shared", "alice": "127.0.0.1:5432/alice_logs"})
    both.check("alice", PG)
    both.check("bob", Endpoint("postgresql", "127.0.0.1", "127.0.0.1", 5432, "shared"))
    with pytest.raises(ReachRefused):
        both.check("bob", PG)


def test_the_metadata_database_is_refused_whatever_the_rules_say():
    meta = DatabaseAccess(
        settings=DatabaseSettings(allowed={"*": "*"}),
        metadata_url="postgresql+psycopg://tr:pw@localhost:5432/alice_logs",
    )
    with pytest.raises(ReachRefused, match="own metadata database"):
        meta.check("alice", PG)
    assert meta.metadata_file() is None
    lite = DatabaseAccess(metadata_url="sqlite:////srv/tailrace/tailrace.db")
    assert lite.metadata_file() == "/srv/tailrace/tailrace.db" and lite.metadata_endpoint() is None


def test_dynamodb_table_patterns():
    a = DatabaseAccess(settings=DatabaseSettings(dynamodb_tables={"alice": "alice_*, shared"}))
    a.check_table("alice", "alice_orders")
    a.check_table("alice", "shared")
    with pytest.raises(ReachRefused, match="DynamoDB table 'bob_orders' is not allowed for owner 'alice'"):
        a.check_table("alice", "bob_orders")


def test_the_section_loads_from_the_file_and_refuses_a_bad_timeout(tmp_path):
    path = tmp_path / "tailrace.toml"
    path.write_text(
        '[databases]\nconnect_timeout = 3\n[databases.rds_instances]\nprod = "jdbc:mysql://h/db"\n'
    )
    settings = load_settings(environ={}, config_file=path)
    assert settings.databases.connect_timeout == 3.0
    assert settings.databases.rds_instances == {"prod": "jdbc:mysql://h/db"}
    path.write_text("[databases]\nconnect_timeout = 0\n")
    with pytest.raises(ConfigError, match="connect_timeout must be positive"):
        load_settings(environ={}, config_file=path)
    path.write_text("[databases]\nallowd = 1\n")
    with pytest.raises(ConfigError, match="Did you mean 'allowed'"):
        load_settings(environ={}, config_file=path)
