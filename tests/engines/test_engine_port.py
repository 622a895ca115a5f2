"""The engine port's contract (tailrace.engines.abc.ScriptEngine): every registered engine passes
these. A second engine joins by adding its registry name to ENGINES (skipped where it cannot run).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hive_helpers import rows_of, write_text

from tailrace.engines.abc import (
    Capabilities,
    EngineSetup,
    HiveError,
    ScriptEngine,
    ScriptInterrupted,
    ScriptRequest,
    StatementResult,
)
from tailrace.engines.metastore import MemoryMetastore, Metastore, TableSpec
from tailrace.engines.registry import EngineRegistry
from tailrace.runtime.context import ListLog
from tailrace.storage import Storage

ENGINES = ["duckdb"]

LOGS = (
    "CREATE EXTERNAL TABLE logs (host string, path string, size int)\n"
    "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://bucket/logs/${DAY}'"
)


class Installation:
    """One engine on a data directory, with a separate metastore namespace per owner."""

    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.metastores: dict[str, MemoryMetastore] = {}
        setup = EngineSetup(storage=Storage(home=home), metastore_for=self.metastore, threads=2)
        self.registry = EngineRegistry(setup)
        self.engine = self.registry.create(name)
        self.log = ListLog()
        self.runs = 0

    def metastore(self, owner: str) -> Metastore:
        return self.metastores.setdefault(owner, MemoryMetastore())

    def request(self, text: str, **kw: object) -> ScriptRequest:
        self.runs += 1
        base: dict[str, object] = {
            "text": text,
            "source": "test.q",
            "work_dir": self.home / "work" / str(self.runs),
            "log": self.log,
        }
        return ScriptRequest(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(params=ENGINES)
def inst(request: pytest.FixtureRequest, data_home: Path) -> Iterator[Installation]:
    installation = Installation(data_home, request.param)
    yield installation
    installation.engine.close()


def logs_day(home: Path, day: str, lines: list[str], bucket: str = "bucket") -> None:
    write_text(home / "s3" / bucket / "logs" / day / "part-0", lines)


def test_the_engine_declares_its_name_and_capabilities(inst):
    cls = type(inst.engine)
    assert issubclass(cls, ScriptEngine)
    assert inst.registry.get(cls.name) is cls
    caps = inst.registry.capabilities(cls.name)
    assert isinstance(caps, Capabilities) and caps is cls.capabilities
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.distributed = not caps.distributed  # type: ignore[misc]
    assert caps.max_threads is None or caps.max_threads > 0


def test_statements_run_in_order_with_variables_and_hiveconf_and_counts(inst, data_home):
    logs_day(data_home, "20121221", ["h1\t/a\t10", "h2\t/b\t20", "h3\t/a"])  # the last line is short
    seen: list[StatementResult] = []
    result = inst.engine.run(
        inst.request(
            f"{LOGS};\n"
            "CREATE EXTERNAL TABLE hits (path string, n bigint)\n"
            "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://bucket/hits/${hiveconf:out}';\n"
            "INSERT OVERWRITE TABLE hits SELECT path, count(*) FROM logs GROUP BY path;\n"
            "SELECT path, n FROM hits ORDER BY path",
            variables={"DAY": "20121221"},
            hiveconf={"out": "d1"},
            owner="alice",
            on_statement=seen.append,
        )
    )
    assert [s.kind for s in result.statements] == [
        "CREATE TABLE",
        "CREATE TABLE",
        "INSERT OVERWRITE",
        "SELECT",
    ]
    assert [s.number for s in result.statements] == [1, 2, 3, 4]
    assert [s.line for s in result.statements] == [1, 3, 5, 6]
    assert seen == result.statements  # reported one by one, as each ended
    assert result.rows_written == 2
    assert result.malformed_lines == 1
    assert result.statements[3].select_rows == [("/a", "2"), ("/b", "1")]
    assert rows_of(data_home / "s3" / "bucket" / "hits" / "d1" / "000000_0") == [["/a", "2"], ["/b", "1"]]
    text = inst.log.text()
    assert "LOCATION 's3://bucket/logs/20121221'" in text  # each statement, substituted, before it ran
    assert text.index("CREATE EXTERNAL TABLE hits") < text.index("INSERT OVERWRITE TABLE hits")
    assert inst.metastores["alice"].get_table("default", "hits") is not None


def test_the_first_failing_statement_raises_with_its_position_and_later_ones_do_not_run(inst, data_home):
    logs_day(data_home, "1", ["h1\t/a\t10"])
    with pytest.raises(HiveError) as caught:
        inst.engine.run(
            inst.request(
                f"{LOGS};\nSELECT hots FROM logs;\nCREATE TABLE later (x int)",
                variables={"DAY": "1"},
                owner="alice",
            )
        )
    err = caught.value
    assert (err.source, err.statement, err.line) == ("test.q", 2, 3)
    assert err.column is not None
    assert "hots" in str(err) and str(err).startswith("test.q:3:")
    assert err.partial is not None and [s.kind for s in err.partial.statements] == ["CREATE TABLE"]
    assert inst.metastores["alice"].get_table("default", "later") is None


def test_owners_do_not_see_or_change_each_others_tables(inst, data_home):
    # Each owner's data in a bucket of its own (a bucket belongs to the owner who used it first).
    logs = LOGS.replace("s3://bucket/", "s3://${BUCKET}/")
    logs_day(data_home, "alice", ["a1\t/alice\t1"], bucket="alices")
    logs_day(data_home, "bob", ["b1\t/bob\t1", "b2\t/bob\t2"], bucket="bobs")
    inst.engine.run(inst.request(logs, variables={"DAY": "alice", "BUCKET": "alices"}, owner="alice"))
    with pytest.raises(HiveError, match="Table not found 'logs'"):
        inst.engine.run(inst.request("SELECT count(*) FROM logs", owner="bob"))
    # Hive drops a missing table quietly by default: Bob's DROP is a no-op on his own namespace.
    inst.engine.run(inst.request("DROP TABLE logs", owner="bob"))
    with pytest.raises(HiveError, match="Table not found 'logs'"):
        inst.engine.run(
            inst.request("SET hive.exec.drop.ignorenonexistent=false; DROP TABLE logs", owner="bob")
        )
    assert inst.metastores["alice"].get_table("default", "logs") is not None
    # Bob's table of the same name is his own; Alice's is untouched.
    inst.engine.run(inst.request(logs, variables={"DAY": "bob", "BUCKET": "bobs"}, owner="bob"))
    bob = inst.engine.run(inst.request("SELECT count(*) FROM logs", owner="bob"))
    alice = inst.engine.run(inst.request("SELECT host FROM logs", owner="alice"))
    assert bob.statements[0].select_rows == [("2",)]
    assert alice.statements[0].select_rows == [("a1",)]
    assert inst.metastores["alice"].get_table("default", "logs").location == "s3://alices/logs/alice"


def test_staged_tables_are_for_one_run_only(inst, data_home):
    logs_day(data_home, "staged", ["h1,/a,1", "h2,/b,2"])
    staged = TableSpec(
        name="input1",
        columns=[("host", "string"), ("path", "string"), ("size", "string")],
        location="s3://bucket/logs/staged",
        row_format="csv_serde",
        field_delimiter=",",
    )
    result = inst.engine.run(
        inst.request("SELECT host FROM input1 ORDER BY host", tables=[staged], owner="alice")
    )
    assert result.statements[0].select_rows == [("h1",), ("h2",)]
    assert inst.metastore("alice").list_tables() == []
    with pytest.raises(HiveError, match="Table not found 'input1'"):
        inst.engine.run(inst.request("SELECT host FROM input1", owner="alice"))


def test_the_engine_removes_what_it_wrote_in_the_work_directory(inst, data_home):
    logs_day(data_home, "1", ["h1\t/a\t10"])
    work = data_home / "given-work"
    work.mkdir()
    (work / "mine").write_text("kept")
    inst.engine.run(
        inst.request(
            f"{LOGS};\nINSERT OVERWRITE DIRECTORY 's3://bucket/out' SELECT host FROM logs",
            variables={"DAY": "1"},
            work_dir=work,
        )
    )
    assert sorted(p.name for p in work.iterdir()) == ["mine"]
    assert (data_home / "s3" / "bucket" / "out").is_dir()


def test_a_set_cancel_hook_stops_before_the_next_statement(inst, data_home):
    logs_day(data_home, "1", ["h1\t/a\t10"])
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(ScriptInterrupted) as before:
        inst.engine.run(inst.request(LOGS, variables={"DAY": "1"}, cancelled=cancelled, owner="o"))
    assert before.value.statement == 1 and before.value.partial.statements == []
    assert inst.metastore("o").get_table("default", "logs") is None

    cancelled.clear()
    with pytest.raises(ScriptInterrupted) as during:
        inst.engine.run(
            inst.request(
                f"{LOGS};\nCREATE TABLE second (x int)",
                variables={"DAY": "1"},
                cancelled=cancelled,
                owner="o",
                on_statement=lambda _res: cancelled.set(),  # cancel arrives while statement 1 ends
            )
        )
    err = during.value
    assert isinstance(err, HiveError) and err.statement == 2 and "interrupted" in str(err)
    assert [s.kind for s in err.partial.statements] == ["CREATE TABLE"]
    assert inst.metastore("o").get_table("default", "logs") is not None
    assert inst.metastore("o").get_table("default", "second") is None


def test_interrupt_with_nothing_running_does_nothing(inst, data_home):
    inst.engine.interrupt()
    logs_day(data_home, "1", ["h1\t/a\t10"])
    result = inst.engine.run(inst.request(f"{LOGS};\nSELECT count(*) FROM logs", variables={"DAY": "1"}))
    assert result.statements[1].select_rows == [("1",)]
