"""The AWS-style client commands against a served API, and `tailrace keys`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from api_helpers import client_for

from tailrace.cli.main import run
from tailrace.cli.runs import run_query, runs_table
from tailrace.services import build_services


def test_define_activate_and_list_runs(cli, world, definition_file):
    code, out, _ = cli(
        "create-pipeline",
        "--name",
        "hello",
        "--unique-id",
        "h-1",
        "--tags",
        "key=team,value=web",
        "--output",
        "json",
    )
    assert code == 0
    pid = json.loads(out)["pipelineId"]
    code, out, _ = cli("create-pipeline", "--name", "hello", "--unique-id", "h-1", "--output", "table")
    assert out.strip() == pid  # idempotent, and the table form is just the id

    code, out, _ = cli(
        "put-pipeline-definition",
        "--pipeline-id",
        pid,
        "--pipeline-definition",
        f"file://{definition_file}",
        "--parameter-values",
        "myMsg=from-cli",
    )
    assert code == 0 and json.loads(out) == {
        "validationErrors": [],
        "errored": False,
        "validationWarnings": [],
    }
    code, out, _ = cli("get-pipeline-definition", "--pipeline-id", pid)
    got = json.loads(out)
    assert [o["id"] for o in got["objects"]] == ["Default", "Daily", "Hello"]
    assert got["values"] == {"myMsg": "from-cli"}
    assert got["objects"][2]["command"] == "echo #{myMsg}" and got["objects"][2]["name"] == "Hello"

    code, _, err = cli("activate-pipeline", "--pipeline-id", pid, "--start-timestamp", "2026-01-03T00:00:00")
    assert code == 0, err
    world.scheduler.tick()
    dp = client_for(world.server.url, cli.key)
    task = dp.poll_for_task(workerGroup="wg-1")["taskObject"]
    dp.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
    world.scheduler.tick()

    window = "2026-01-01T00:00:00,2026-01-31T00:00:00"
    code, out, _ = cli("list-runs", "--pipeline-id", pid, "--schedule-interval", window, "--output", "json")
    runs = json.loads(out)
    assert [r["@scheduledStartTime"] for r in runs] == sorted(r["@scheduledStartTime"] for r in runs)
    assert runs[0]["@id"] == "@Hello_2026-01-03T00:00:00" and runs[0]["@status"] == "FINISHED"
    assert runs[0]["@componentParent"] == "Hello"
    code, out, _ = cli(
        "list-runs",
        "--pipeline-id",
        pid,
        "--schedule-interval",
        window,
        "--status",
        "finished",
        "--output",
        "json",
    )
    assert [r["@id"] for r in json.loads(out)] == ["@Hello_2026-01-03T00:00:00"]
    code, table, _ = cli(
        "list-runs", "--pipeline-id", pid, "--schedule-interval", window, "--output", "table"
    )
    assert table == runs_table(runs) + "\n"
    assert "   1.  Hello" in table

    code, out, _ = cli(
        "query-objects",
        "--pipeline-id",
        pid,
        "--sphere",
        "INSTANCE",
        "--limit",
        "1",
        "--objects-query",
        '{"selectors": [{"fieldName": "@status", "operator": {"type": "EQ", "values": ["FINISHED"]}}]}',
    )
    assert json.loads(out)["ids"] == ["@Hello_2026-01-03T00:00:00"]  # every page was fetched
    code, out, _ = cli(
        "describe-objects",
        "--pipeline-id",
        pid,
        "--object-ids",
        "@Hello_2026-01-03T00:00:00",
        "--evaluate-expressions",
        "--output",
        "json",
    )
    fields = {f["key"]: f.get("stringValue") for f in json.loads(out)["pipelineObjects"][0]["fields"]}
    assert fields["command"] == "echo from-cli" and fields["@status"] == "FINISHED"
    code, out, _ = cli(
        "evaluate-expression",
        "--pipeline-id",
        pid,
        "--object-id",
        "@Hello_2026-01-03T00:00:00",
        "--expression",
        "#{myMsg}@#{@scheduledStartTime}",
        "--output",
        "table",
    )
    assert out.strip() == "from-cli@2026-01-03T00:00:00"

    code, out, _ = cli("describe-pipelines", "--pipeline-ids", pid, "--output", "table")
    assert "@pipelineState" in out and "SCHEDULED" in out and "tag:team" in out
    code, out, _ = cli("list-pipelines", "--output", "json")
    assert json.loads(out) == {"pipelineIdList": [{"id": pid, "name": "hello"}]}
    assert cli("set-status", "--pipeline-id", pid, "--object-ids", "Hello", "--status", "PAUSE")[0] == 0
    assert cli("add-tags", "--pipeline-id", pid, "--tags", "env=prod")[0] == 0
    assert cli("remove-tags", "--pipeline-id", pid, "--tag-keys", "team")[0] == 0
    assert cli("deactivate-pipeline", "--pipeline-id", pid, "--no-cancel-active")[0] == 0
    assert cli("delete-pipeline", "--pipeline-id", pid)[0] == 0
    assert json.loads(cli("list-pipelines", "--output", "json")[1]) == {"pipelineIdList": []}


def test_invalid_definition_and_server_errors_are_reported(cli, tmp_path):
    pid = json.loads(cli("create-pipeline", "--name", "x", "--unique-id", "x", "--output", "json")[1])[
        "pipelineId"
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": [{"id": "A", "type": "ShellCommandActivty"}]}))
    code, out, err = cli(
        "put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition", f"file://{bad}"
    )
    assert code == 1 and json.loads(out)["errored"] is True and "not saved" in err
    code, out, err = cli(
        "validate-pipeline-definition",
        "--pipeline-id",
        pid,
        "--pipeline-definition",
        str(bad),
        "--output",
        "table",
    )
    assert code == 1 and "error  A:" in out
    broken = tmp_path / "broken.json"
    broken.write_text('{"objects": [\n  {"id": "A",, }]}')
    code, _, err = cli(
        "put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition", f"file://{broken}"
    )
    assert code != 0 and "broken.json:2" in err
    code, _, err = cli("describe-pipelines", "--pipeline-ids", "df-NOTTHERE000000000")
    assert code == 1 and "PipelineNotFoundException" in err
    code, _, err = cli("list-runs", "--pipeline-id", pid, "--status", "exploded")
    assert code == 2 and "invalid status 'exploded'" in err
    code, _, err = cli("list-runs", "--pipeline-id", pid, "--start-interval", "yesterday")
    assert code == 2 and "--start-interval takes START,END" in err


def test_connection_and_credential_problems_are_explained(cli, monkeypatch, tmp_path):
    code, _, err = cli("list-pipelines", "--endpoint-url", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach tailrace at http://127.0.0.1:9" in err
    monkeypatch.setenv("TAILRACE_SECRET_ACCESS_KEY", "wrong")
    code, _, err = cli("list-pipelines")
    assert code == 1 and "InvalidSignatureException" in err
    monkeypatch.delenv("TAILRACE_ACCESS_KEY_ID")
    monkeypatch.delenv("TAILRACE_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    code, _, err = cli("list-pipelines")
    assert code == 2 and "no access key" in err


def test_credentials_file_then_aws_variables(cli, world, monkeypatch, tmp_path):
    from tailrace.api.credentials import write_credentials_file

    monkeypatch.delenv("TAILRACE_ACCESS_KEY_ID")
    monkeypatch.delenv("TAILRACE_SECRET_ACCESS_KEY")
    monkeypatch.delenv("TAILRACE_ENDPOINT")
    other = world.keys.create("dave")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", other.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", other.secret_access_key)
    monkeypatch.setenv("TAILRACE_PORT", str(world.server.port))
    cli("create-pipeline", "--name", "d", "--unique-id", "d")
    # The file written by `tailrace up` wins over AWS_* (which may be meant for S3).
    write_credentials_file(tmp_path / "client-home", cli.key, world.server.url)
    cli("create-pipeline", "--name", "c", "--unique-id", "c")
    dave = client_for(world.server.url, other).list_pipelines()["pipelineIdList"]
    carol = client_for(world.server.url, cli.key).list_pipelines()["pipelineIdList"]
    assert [p["name"] for p in dave] == ["d"] and [p["name"] for p in carol] == ["c"]


def test_list_runs_query_matches_the_aws_cli():
    from argparse import Namespace

    from awscli.customizations.datapipeline import QueryArgBuilder

    now = datetime(2026, 3, 5, 12, 0, 0, tzinfo=UTC)
    for status, start, scheduled in (
        (None, None, None),
        ("finished,failed", None, None),
        (None, "2026-01-01T00:00:00,2026-01-02T00:00:00", "2026-01-01T00:00:00,2026-02-01T00:00:00"),
        ("running", None, "2026-01-01T00:00:00,2026-02-01T00:00:00"),
    ):
        ours = run_query(Namespace(status=status, start_interval=start, schedule_interval=scheduled), now)
        theirs = QueryArgBuilder(current_time=now).build_query(
            Namespace(
                status=status.split(",") if status else None,
                start_interval=start.split(",") if start else None,
                schedule_interval=scheduled.split(",") if scheduled else None,
            )
        )
        assert ours == theirs


def test_list_runs_table_is_the_aws_cli_layout():
    from awscli.customizations.datapipeline.listrunsformatter import ListRunsFormatter

    runs = [
        {
            "@componentParent": "a-component-name-that-is-longer-than-fifty-characters-in-all",
            "@scheduledStartTime": "2026-01-03T00:00:00",
            "@status": "WAITING_ON_DEPENDENCIES",
            "@id": "@x_1",
        },
        {
            "@componentParent": "b",
            "@scheduledStartTime": "2026-01-04T00:00:00",
            "@status": "FINISHED",
            "@id": "@b_2",
            "@actualStartTime": "2026-01-04T00:00:05",
            "@actualEndTime": "2026-01-04T00:01:00",
        },
    ]
    stream = io.StringIO()
    ListRunsFormatter.__new__(ListRunsFormatter)._format_response("list-runs", runs, stream)
    assert runs_table(runs) + "\n" == stream.getvalue()


def test_keys_commands(world, tmp_path, monkeypatch):
    db = world.store.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TAILRACE_HOME", str(tmp_path / "admin"))
    monkeypatch.setenv("TAILRACE_DATABASE_URL", db)

    def tailrace(*argv):
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        return run(list(argv), build_services), out.getvalue()

    code, out = tailrace("keys", "create", "--owner", "erin", "--output", "json")
    created = json.loads(out)
    assert code == 0 and set(created) == {"AccessKeyId", "SecretAccessKey", "Owner"}
    erin = world.keys.lookup(created["AccessKeyId"])
    assert erin is not None and erin.owner == "erin"
    client = client_for(world.server.url, erin)
    assert client.list_pipelines()["pipelineIdList"] == []
    code, out = tailrace("keys", "list", "--owner", "erin", "--output", "json")
    assert [k["AccessKeyId"] for k in json.loads(out)["AccessKeys"]] == [created["AccessKeyId"]]
    assert "SecretAccessKey" not in out
    assert tailrace("keys", "disable", created["AccessKeyId"])[0] == 0
    with pytest.raises(client.exceptions.ClientError, match="UnrecognizedClientException"):
        client.list_pipelines()
    assert tailrace("keys", "enable", created["AccessKeyId"])[0] == 0
    client.list_pipelines()
    code, out = tailrace("keys", "create", "--owner", "not ok!")
    assert code == 2


def test_parameter_values_from_a_uri_and_both_forms_refused(cli, definition_file, tmp_path):
    pid = json.loads(cli("create-pipeline", "--name", "v", "--unique-id", "v", "--output", "json")[1])[
        "pipelineId"
    ]
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"values": {"myMsg": "from-file"}}))
    code, _, err = cli(
        "put-pipeline-definition",
        "--pipeline-id",
        pid,
        "--pipeline-definition",
        f"file://{definition_file}",
        "--parameter-values-uri",
        f"file://{values}",
    )
    assert code == 0, err
    assert json.loads(cli("get-pipeline-definition", "--pipeline-id", pid)[1])["values"] == {
        "myMsg": "from-file"
    }
    code, _, err = cli(
        "activate-pipeline",
        "--pipeline-id",
        pid,
        "--parameter-values",
        "myMsg=x",
        "--parameter-values-uri",
        f"file://{values}",
    )
    assert code == 2 and "not both" in err
    code, _, err = cli("activate-pipeline", "--pipeline-id", pid, "--start-timestamp", "soon")
    assert code == 2 and "--start-timestamp must look like" in err
