"""More attacks by a second owner (mallory) against `tailrace up` started as root, alice holding
data (the fixtures of security_helpers): SQL definitions (SQLite ATTACH and VACUUM INTO, DuckDB,
PostgreSQL by other spellings of a refused address), object ids that are paths, expressions that
fan out while pipelines run, SNS endpoints on this host by every spelling, SnsAlarm to alice's
topic, and the console (alice's ids in URLs and streams, CSRF, markup in names and logs).

Every attack pipeline is started first (they run in parallel on the embedded workers); each test
then waits for its own outcome.
"""

from __future__ import annotations

import glob
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from security_helpers import Server

from tailrace.definition import from_file_dict, to_wire

ALICE_ROW = "alice-private-row-93b2"
ESCAPE = "/tmp/tailrace-redteam-escape"
"""Where an object id made of '../' would put the server's running log (must never appear)."""


def db(url: str, driver: str = "org.sqlite.JDBC") -> dict[str, Any]:
    return {"id": "Db", "type": "JdbcDatabase", "connectionString": url, "jdbcDriverClass": driver,
            "username": "postgres", "*password": "p"}  # fmt: skip


def sql(url: str, script: str, driver: str = "org.sqlite.JDBC") -> list[dict[str, Any]]:
    return [
        db(url, driver),
        {"id": "Attack", "type": "SqlActivity", "database": {"ref": "Db"}, "script": script},
    ]


def pg(url: str, script: str = "SELECT 1") -> list[dict[str, Any]]:
    return sql(url, script, "org.postgresql.Driver")


def fan_out(depth: int = 40) -> dict[str, str]:
    """Fields that each refer twice to the next: 2^depth pieces for one `#{myF0}`."""
    out = {f"myF{n}": f"#{{myF{n + 1}}}#{{myF{n + 1}}}" for n in range(depth)}
    out[f"myF{depth}"] = "ab"
    return out


def shell(command: str, **fields: Any) -> dict[str, Any]:
    return {"id": "Attack", "type": "ShellCommandActivity", "command": command, **fields}


def attacks(
    server: Server, victim: Path, alice_pid: str, alice_topic: str
) -> dict[str, list[dict[str, Any]]]:
    home, shared = server.home, server.home.parent / "shared"
    meta = home / "tailrace.db"
    return {
        "sqlite-attach-metadata": sql(
            "jdbc:sqlite::memory:",
            f"ATTACH '{meta}' AS m; UPDATE m.tr_pipelines SET owner = 'mallory'; "
            "SELECT load_extension((SELECT group_concat(wire) FROM m.tr_definitions))",
        ),
        "sqlite-attach-no-path": sql("jdbc:sqlite:", f"ATTACH DATABASE '{meta}' AS m"),
        "sqlite-attach-creates-file": sql(
            "jdbc:sqlite::memory:", f"ATTACH '{victim}/attached.db' AS x; CREATE TABLE x.t (a)"
        ),
        "sqlite-vacuum-into": sql(
            "jdbc:sqlite::memory:", f"CREATE TABLE t (a); VACUUM INTO '{victim}/vacuumed.db'"
        ),
        "sqlite-load-extension": sql("jdbc:sqlite::memory:", "SELECT load_extension('/nonexistent/x.so')"),
        "sqlite-relative-metadata": sql("jdbc:sqlite:home/tailrace.db", "SELECT 1"),
        "sqlite-relative-path": sql("jdbc:sqlite:shared/in/ok.tsv", "SELECT 1"),
        "sqlite-dotdot-metadata": sql(f"jdbc:sqlite:{shared}/../home/tailrace.db", "SELECT 1"),
        "sqlite-planted-link": sql(f"jdbc:sqlite:{shared}/in/planted.tsv", "SELECT 1"),
        "sqlite-alice-bucket-file": sql(f"jdbc:sqlite:{home}/s3/alice-more/private/part-0", "SELECT 1"),
        "duckdb-attach-metadata": sql("jdbc:duckdb::memory:", f"ATTACH '{meta}' AS m"),
        "duckdb-enable-external": sql("jdbc:duckdb::memory:", "SET enable_external_access = true"),
        "duckdb-copy-to": sql("jdbc:duckdb::memory:", f"COPY (SELECT 1) TO '{victim}/copied.csv'"),
        "pg-copy-to-program": pg("jdbc:postgresql://127.0.0.1:5432/test", "COPY (SELECT 1) TO PROGRAM 'id'"),
        "pg-ipv6-loopback": pg("jdbc:postgresql://[::1]:5432/test"),
        "pg-ipv4-mapped": pg("jdbc:postgresql://[::ffff:127.0.0.1]:5432/test"),
        "pg-decimal-address": pg("jdbc:postgresql://2130706433:5432/test"),
        "pg-short-address": pg("jdbc:postgresql://127.1:5432/test"),
        "pg-socket-as-host": pg("jdbc:postgresql://%2Frun%2Fpostgresql:5432/test"),
        "pg-socket-property": pg("jdbc:postgresql://127.0.0.1:5432/test?host=/run/postgresql"),
        "pg-table-copy": [
            db("jdbc:postgresql://127.0.0.1:5432/test", "org.postgresql.Driver"),
            {"id": "In", "type": "SqlDataNode", "database": {"ref": "Db"}, "table": "pg_authid"},
            {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://mallory-more/loot/"},
            {"id": "Attack", "type": "CopyActivity", "input": {"ref": "In"}, "output": {"ref": "Out"}},
        ],
        "expr-fan-out-command": [shell("#{myF0}", **fan_out())],
        "expr-list-product": [shell("echo " + "#{myL}" * 8, myL=[str(i) for i in range(30)])],
        "expr-fan-out-log-uri": [shell("echo log-uri-fan-out", pipelineLogUri="#{myF0}", **fan_out())],
        "expr-fan-out-alarm-message": [
            {
                "id": "Alarm",
                "type": "SnsAlarm",
                "topicArn": "arn:aws:sns:us-east-1:000000000000:mine",
                "role": "r",
                "subject": "s",
                "message": "#{myF0}",
                **fan_out(),
            },
            shell("exit 3", onFail={"ref": "Alarm"}),
        ],
        "snsalarm-to-alice-topic": [
            {
                "id": "Alarm",
                "type": "SnsAlarm",
                "role": "r",
                "topicArn": alice_topic,
                "subject": "s",
                "message": "pwned",
            },
            shell("exit 3", onFail={"ref": "Alarm"}),
        ],
        "id-into-alice-log-dir": [
            {"id": f"../{alice_pid}/Write", "type": "ShellCommandActivity", "command": "echo MALLORY-OUTPUT"}
        ],
        "id-escapes-to-tmp": [
            {
                "id": "x/" + "../" * 14 + ESCAPE.lstrip("/"),
                "type": "ShellCommandActivity",
                "command": "echo ESCAPED-OUTPUT",
            }
        ],
        "markup-in-log": [shell("echo '<script>alert(1)</script>'")],
    }


REFUSED = {
    "sqlite-attach-metadata": "ATTACH, VACUUM INTO, the directory pragmas and extensions are refused",
    "sqlite-attach-no-path": "ATTACH, VACUUM INTO, the directory pragmas and extensions are refused",
    "sqlite-attach-creates-file": "ATTACH, VACUUM INTO, the directory pragmas and extensions are refused",
    "sqlite-vacuum-into": "ATTACH, VACUUM INTO, the directory pragmas and extensions are refused",
    "sqlite-load-extension": "not authorized",
    "sqlite-relative-metadata": "tailrace's own metadata database",
    "sqlite-relative-path": "local paths must be absolute",
    "sqlite-dotdot-metadata": "tailrace's own metadata database",
    "sqlite-planted-link": "local paths are not allowed",
    "sqlite-alice-bucket-file": "local paths are not allowed",
    "duckdb-attach-metadata": "disabled by configuration",
    "duckdb-enable-external": "locked",
    "duckdb-copy-to": "disabled by configuration",
    "pg-copy-to-program": "is not allowed for owner 'mallory'",
    "pg-ipv6-loopback": "is not allowed for owner 'mallory'",
    "pg-ipv4-mapped": "is not allowed for owner 'mallory'",
    "pg-decimal-address": "is not allowed for owner 'mallory'",
    "pg-short-address": "is not allowed for owner 'mallory'",
    "pg-socket-as-host": "cannot resolve host",
    "pg-socket-property": "is not allowed for owner 'mallory'",
    "pg-table-copy": "is not allowed for owner 'mallory'",
    "expr-fan-out-command": "time limit",
    "expr-list-product": "at most 10000",
}
COMPONENT = {
    "id-into-alice-log-dir": "../{alice_pid}/Write",
    "id-escapes-to-tmp": "x/" + "../" * 14 + ESCAPE.lstrip("/"),
}


def alice_objects() -> list[dict[str, Any]]:
    return [
        {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://alice-more/private/"},
        shell(
            f"echo {ALICE_ROW} > $OUTPUT1_STAGING_DIR/part-0", id="Write", stage="true", output={"ref": "Out"}
        ),
    ]


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    alice_pid = server.start("alice", alice_objects(), "alice-more")
    alice = server.outcome("alice", alice_pid, "Write")
    assert alice["@status"] == "FINISHED", alice
    sns = sns_client(server, "alice")
    topic = sns.create_topic(Name="alice-alarms")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="store", Endpoint="s3://alice-more/notes/")
    victim = tmp_path_factory.mktemp("victim-more")
    started = {
        name: server.start("mallory", objs, name)
        for name, objs in attacks(server, victim, alice_pid, topic).items()
    }
    return {"started": started, "victim": victim, "alice_pid": alice_pid, "alice": alice, "topic": topic}


def outcome(server: Server, world: dict[str, Any], name: str, timeout: float = 120.0) -> dict[str, str]:
    component = COMPONENT.get(name, "Attack").format(alice_pid=world["alice_pid"])
    result = server.outcome("mallory", world["started"][name], component, timeout=timeout)
    shown = result.get("errorMessage", "") + result["log"]
    for secret in server.secrets():
        assert secret not in shown, f"{name}: a secret reached the answer or the attempt log"
    return result


def alice_intact(server: Server) -> None:
    assert (server.home / "s3/alice-more/private/part-0").read_text().strip() == ALICE_ROW
    assert not (server.home / "s3/alice-more/notes").exists()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_attack_is_refused_with_a_clear_error(server: Server, world: dict[str, Any], name: str) -> None:
    result = outcome(server, world, name)
    assert result["@status"] == "FAILED", (name, result)
    said = result.get("errorMessage", "") + result["log"]
    assert REFUSED[name].lower() in said.lower(), (name, said[-2000:])
    assert not list(world["victim"].iterdir()), name  # no file created by ATTACH, VACUUM or COPY
    assert not (server.home / "s3/mallory-more/loot").exists()
    alice_intact(server)
    server.client("alice").describe_pipelines(pipelineIds=[world["alice_pid"]])  # still hers


def test_object_ids_never_put_files_outside_the_pipelines_directory(
    server: Server, world: dict[str, Any]
) -> None:
    escaped = outcome(server, world, "id-escapes-to-tmp")
    assert escaped["@status"] == "FINISHED", escaped
    assert not glob.glob(ESCAPE + "*"), "an object id put the server's running log outside its home"
    # The log stays where the server keeps the pipeline's logs (an id with '/' cannot be named
    # in a REST path, so it is read from the disk here).
    mine = server.home / "logs" / world["started"]["id-escapes-to-tmp"]
    assert any("ESCAPED-OUTPUT" in p.read_text() for p in mine.rglob("*") if p.is_file())
    into = outcome(server, world, "id-into-alice-log-dir")
    assert into["@status"] == "FINISHED", into
    alice_logs = server.home / "logs" / world["alice_pid"]
    assert not any("MALLORY-OUTPUT" in p.read_text() for p in alice_logs.rglob("*") if p.is_file())
    mine = server.home / "logs" / world["started"]["id-into-alice-log-dir"]
    assert any("MALLORY-OUTPUT" in p.read_text() for p in mine.rglob("*") if p.is_file())
    status, body = server.rest(
        "mallory", f"/api/v1/pipelines/{world['alice_pid']}/attempts/{world['alice']['@headAttempt']}/log"
    )
    assert status == 404 and ALICE_ROW.encode() not in body


def test_fan_out_in_a_log_uri_or_an_alarm_is_stopped_and_others_still_run(
    server: Server, world: dict[str, Any]
) -> None:
    log_uri = outcome(server, world, "expr-fan-out-log-uri")
    assert log_uri["@status"] in ("FINISHED", "FAILED"), log_uri
    alarm = outcome(server, world, "expr-fan-out-alarm-message")
    assert alarm["@status"] == "FAILED", alarm
    after = server.run("alice", [shell("echo still-served")], "Attack", name="alice-after")
    assert after["@status"] == "FINISHED" and "still-served" in after["log"], after


def test_an_alarm_never_publishes_to_another_owners_topic(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "snsalarm-to-alice-topic")
    assert result["@status"] == "FAILED"
    time.sleep(2)  # the relay publishes after the commit
    alice_intact(server)
    with pytest.raises(ClientError) as err:
        sns_client(server, "mallory").publish(TopicArn=world["topic"], Message="pwned")
    assert err.value.response["Error"]["Code"] in ("AuthorizationError", "NotFound"), err.value.response
    alice_intact(server)


# --- EvaluateExpression -----------------------------------------------------------------------


def _expression_pipeline(server: Server) -> str:
    dp = server.client("mallory")
    pid = dp.create_pipeline(name="expr", uniqueId=f"expr-{time.monotonic_ns()}")["pipelineId"]
    default = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "embedded"}
    # An object holds at most 50 fields (each value of a list counts): the list apart.
    lists = {"id": "L", "type": "ShellCommandActivity", "command": "true", "myL": [str(i) for i in range(30)]}
    form = {
        "objects": [
            default,
            lists,
            {"id": "E", "type": "ShellCommandActivity", "command": "true", **fan_out()},
        ]
    }
    answer = dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(form)))
    assert not answer["errored"], answer
    return pid


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("#{myL}" * 8, "at most 10000"),
        ("#{myL + myL + myL}", "at most 10000"),
        ("#{myF0}", "time limit"),
        ("#{getenv('TAILRACE_TEST_SERVER_SECRET')}", "unknown function"),
        ("#{readFile('/etc/passwd')}", "unknown function"),
        ("#{@TAILRACE_TEST_SERVER_SECRET}", "TAILRACE_TEST_SERVER_SECRET"),
    ],
)
def test_evaluate_expression_is_bounded_and_reads_nothing_of_the_host(
    server: Server, expression: str, said: str
) -> None:
    dp = server.client("mallory")
    pid = _expression_pipeline(server)
    with pytest.raises(ClientError) as err:
        dp.evaluate_expression(
            pipelineId=pid, objectId="L" if "myL" in expression else "E", expression=expression
        )
    message = err.value.response["Error"]["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, err.value.response
    assert said in message, message
    assert all(secret not in message for secret in server.secrets())


def test_format_strings_are_dates_only(server: Server) -> None:
    """Joda patterns only: %-codes, {0} and ${NAME} stay text (nothing of Python's formatting
    or of the environment)."""
    dp = server.client("mallory")
    pid = _expression_pipeline(server)
    expression = """#{format(makeDate(2026, 1, 1), "'{0} ${HOME} %s' yyyy")}"""
    text = dp.evaluate_expression(pipelineId=pid, objectId="E", expression=expression)["evaluatedExpression"]
    assert text == "{0} ${HOME} %s 2026", text


# --- SNS endpoints ------------------------------------------------------------------------------


def sns_client(server: Server, owner: str) -> Any:
    key = server.keys[owner]
    return boto3.client("sns", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key,
                        config=Config(retries={"max_attempts": 1}))  # fmt: skip


def test_subscriptions_to_this_host_are_refused_by_every_spelling(server: Server) -> None:
    """Two owners: private destinations are closed ("single-owner"); loopback spellings only, so
    that nothing leaves this host even if one got through."""
    port = server.url.rsplit(":", 1)[1]
    sns = sns_client(server, "mallory")
    arn = sns.create_topic(Name="mallory-hooks")["TopicArn"]
    endpoints = [
        ("http", f"http://127.0.0.1:{port}/"),
        ("http", f"http://localhost:{port}/console"),
        ("http", f"http://[::1]:{port}/"),
        ("http", f"http://[::ffff:127.0.0.1]:{port}/"),
        ("http", f"http://[::ffff:7f00:1]:{port}/"),
        ("http", f"http://2130706433:{port}/"),
        ("http", f"http://0177.0.0.1:{port}/"),
        ("http", f"http://0x7f.0.0.1:{port}/"),
        ("http", f"http://127.1:{port}/"),
        ("http", f"http://0:{port}/"),
        ("http", f"http://0.0.0.0:{port}/"),
        ("http", f"http://[::]:{port}/"),
        ("https", "https://127.0.0.1/"),
        ("redis", "redis://127.0.0.1:6379/0#alarms"),
        ("redis", "redis://localhost:6379/0#alarms"),
    ]
    for protocol, endpoint in endpoints:
        with pytest.raises(ClientError) as err:
            sns.subscribe(TopicArn=arn, Protocol=protocol, Endpoint=endpoint)
        assert err.value.response["Error"]["Code"] == "InvalidParameter", (endpoint, err.value.response)
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


# --- the console --------------------------------------------------------------------------------


def console(server: Server, owner: str) -> tuple[requests.Session, str]:
    import re

    key = server.keys[owner]
    s = requests.Session()
    r = s.post(server.url + "/console/login", data={"kind": "key", "access_key_id": key.access_key_id,
               "secret": key.secret_access_key, "next": "/console"})  # fmt: skip
    assert r.status_code == 200, r.text[:500]
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', r.text)
    assert m, r.text[:500]
    return s, m.group(1)


def test_console_shows_mallory_nothing_of_alices(server: Server, world: dict[str, Any]) -> None:
    s, _ = console(server, "mallory")
    apid, attempt = world["alice_pid"], world["alice"]["@headAttempt"]
    own = world["started"]["markup-in-log"]
    for path in (
        f"/console/pipelines/{apid}",
        f"/console/pipelines/{apid}/attempts/{attempt}/log",
        f"/console/pipelines/{own}/attempts/{attempt}/log",
        f"/console/pipelines/{apid}/attempts/{attempt}/log/stream",
        f"/console/pipelines/{own}/attempts/{attempt}/log/stream",
        f"/console/pipelines/{own}/attempts/..%2F..%2F{apid}%2Fattempts%2F{attempt}/log",
        f"/console/pipelines/..%2F{apid}",
        f"/console/pipelines/{apid}%00",
        "/console/static/..%2f..%2fapp.py",
    ):
        r = s.get(server.url + path, timeout=30, stream=path.endswith("/stream"))
        assert r.status_code in (400, 404), (path, r.status_code)
        body = r.raw.read(4096) if path.endswith("/stream") else r.content
        assert ALICE_ROW.encode() not in body, path
        r.close()
    listing = s.get(server.url + "/console", timeout=30).text
    assert apid not in listing and "alice-more" not in listing


def test_console_actions_need_the_owner_and_the_csrf_token(server: Server, world: dict[str, Any]) -> None:
    s, token = console(server, "mallory")
    apid, own = world["alice_pid"], world["started"]["markup-in-log"]
    url = server.url + "/console/pipelines/{}/actions/deactivate"
    r = s.post(url.format(apid), data={"csrf": token, "confirm": "yes"}, allow_redirects=False)
    assert r.status_code == 404, r.status_code
    r = s.post(url.format(own), data={"confirm": "yes"}, allow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.text
    r = s.post(url.format(own), data={"csrf": token, "confirm": "yes"}, headers={"Origin": "http://evil.example"},
               allow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    states = server.client("alice").describe_pipelines(pipelineIds=[apid])["pipelineDescriptionList"][0]
    fields = {f["key"]: f.get("stringValue") for f in states["fields"]}
    assert fields.get("@pipelineState") != "INACTIVE" and fields.get("@pipelineState") != "DEACTIVATING"


def test_console_sign_in_never_redirects_to_another_site(server: Server) -> None:
    key = server.keys["mallory"]
    for nxt in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/console\\@evil.example"):
        r = requests.post(server.url + "/console/login", data={"kind": "key", "access_key_id": key.access_key_id,
                          "secret": key.secret_access_key, "next": nxt}, allow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"].startswith("/console"), (nxt, r.headers)


def test_markup_in_a_log_is_text_and_never_runs(server: Server, world: dict[str, Any]) -> None:
    result = outcome(server, world, "markup-in-log")
    assert "<script>alert(1)</script>" in result["log"]
    s, _ = console(server, "mallory")
    pid = world["started"]["markup-in-log"]
    r = s.get(server.url + f"/console/pipelines/{pid}/attempts/{result['@headAttempt']}/log", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert (
        r.headers["x-content-type-options"] == "nosniff"
        and "script-src 'self'" in r.headers["content-security-policy"]
    )
    page = s.get(server.url + f"/console/pipelines/{pid}", timeout=30).text
    assert "<script>alert(1)</script>" not in page


def test_another_owners_topic_is_out_of_reach(server: Server, world: dict[str, Any]) -> None:
    sns, arn = sns_client(server, "mallory"), world["topic"]
    assert arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    calls = [
        lambda: sns.subscribe(TopicArn=arn, Protocol="store", Endpoint="s3://mallory-more/stolen/"),
        lambda: sns.get_topic_attributes(TopicArn=arn),
        lambda: sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="x"),
        lambda: sns.list_subscriptions_by_topic(TopicArn=arn),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] in ("AuthorizationError", "NotFound"), err.value.response
    try:  # DeleteTopic of a topic the caller has not is a no-op in SNS: either way, hers stays
        sns.delete_topic(TopicArn=arn)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("AuthorizationError", "NotFound"), exc.response
    assert sns_client(server, "alice").get_topic_attributes(TopicArn=arn)["Attributes"]["TopicArn"] == arn


def test_every_pipeline_operation_on_alices_id_is_refused(server: Server, world: dict[str, Any]) -> None:
    dp, apid = server.client("mallory"), world["alice_pid"]
    calls = [
        lambda: dp.evaluate_expression(pipelineId=apid, objectId="Write", expression="#{command}"),
        lambda: dp.get_pipeline_definition(pipelineId=apid),
        lambda: dp.describe_pipelines(pipelineIds=[apid]),
        lambda: dp.query_objects(pipelineId=apid, sphere="INSTANCE"),
        lambda: dp.describe_objects(pipelineId=apid, objectIds=["Write"]),
        lambda: dp.set_status(pipelineId=apid, objectIds=["Write"], status="PAUSE"),
        lambda: dp.add_tags(pipelineId=apid, tags=[{"key": "k", "value": "v"}]),
        lambda: dp.deactivate_pipeline(pipelineId=apid),
        lambda: dp.delete_pipeline(pipelineId=apid),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        said = err.value.response["Error"]
        assert said["Code"] in ("PipelineNotFoundException", "PipelineDeletedException"), said
        assert ALICE_ROW not in said.get("Message", "")
    assert server.client("alice").describe_pipelines(pipelineIds=[apid])["pipelineDescriptionList"]
    assert apid not in [p["id"] for p in dp.list_pipelines()["pipelineIdList"]]


def test_a_cloudwatch_alarm_never_publishes_to_another_owners_topic(
    server: Server, world: dict[str, Any]
) -> None:
    key = server.keys["mallory"]
    cw = boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key,
                      config=Config(retries={"max_attempts": 1}))  # fmt: skip
    try:
        cw.put_metric_alarm(
            AlarmName="to-alice", Namespace="Mine", MetricName="m", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[world["topic"]],
        )  # fmt: skip
        cw.set_alarm_state(AlarmName="to-alice", StateValue="ALARM", StateReason="attack")
    except ClientError as exc:  # refused at once is as good
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500, exc.response
    # A control: alice's own message to a topic of hers reaches its store subscription; by then
    # anything mallory's alarm published would have been delivered too.
    sns = sns_client(server, "alice")
    control = sns.create_topic(Name="alice-control")["TopicArn"]
    sns.subscribe(TopicArn=control, Protocol="store", Endpoint="s3://alice-more/control/")
    sns.publish(TopicArn=control, Message="control")
    deadline = time.monotonic() + 30
    while not list((server.home / "s3/alice-more/control").rglob("*.json")):
        assert time.monotonic() < deadline, "the control message was not delivered"
        time.sleep(0.3)
    time.sleep(1)
    alice_intact(server)
