"""Scripting the client commands as the AWS CLI is scripted: --query (JMESPath) and
--output json|text|table on every client command."""

from __future__ import annotations

import json

import pytest

from tailrace.cli.commands.aws import COMMANDS
from tailrace.cli.main import build_parser
from tailrace.cli.output import table_text, text_lines


def test_create_pipeline_prints_just_the_id_for_a_script(cli):
    code, out, err = cli(
        "create-pipeline", "--name", "x", "--unique-id", "y", "--query", "pipelineId", "--output", "text"
    )
    assert code == 0, err
    pid = out.strip()
    assert out == pid + "\n" and pid.startswith("df-")
    # The same call again (idempotent on --unique-id) gives the same id.
    assert cli("create-pipeline", "--name", "x", "--unique-id", "y", "--query", "pipelineId",
               "--output", "text")[1].strip() == pid  # fmt: skip


def test_query_and_output_on_reads(cli, definition_file):
    pids = [
        cli("create-pipeline", "--name", n, "--unique-id", n, "--query", "pipelineId", "--output", "text")[
            1
        ].strip()
        for n in ("a", "b")
    ]
    code, out, _ = cli("list-pipelines", "--query", "pipelineIdList[].name", "--output", "json")
    assert code == 0 and sorted(json.loads(out)) == ["a", "b"]
    code, out, _ = cli("list-pipelines", "--query", "pipelineIdList[].id", "--output", "text")
    assert sorted(out.split()) == sorted(pids) and out.count("\t") == 1
    code, out, _ = cli("list-pipelines", "--output", "table", "--query", "pipelineIdList")
    assert out.splitlines()[0].split() == ["id", "name"] and len(out.splitlines()) == 4
    code, out, _ = cli(
        "describe-pipelines",
        "--pipeline-ids",
        pids[0],
        "--query",
        "pipelineDescriptionList[0].fields[?key=='@pipelineState'].stringValue | [0]",
        "--output",
        "text",
    )
    assert out == "PENDING\n"
    code, out, _ = cli(
        "put-pipeline-definition",
        "--pipeline-id",
        pids[0],
        "--pipeline-definition",
        f"file://{definition_file}",
        "--query",
        "errored",
        "--output",
        "text",
    )
    assert code == 0 and out == "False\n"
    code, out, _ = cli("get-pipeline-definition", "--pipeline-id", pids[0], "--query", "objects[].id")
    assert "Hello" in json.loads(out)


def test_a_bad_query_is_a_usage_error_naming_it(cli):
    code, out, err = cli("list-pipelines", "--query", "pipelineIdList[")
    assert code != 0 and "--query 'pipelineIdList['" in err and not out


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_every_client_command_takes_query_and_the_three_outputs(name):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[name]
    opts = {o: a for a in sub._actions for o in a.option_strings}
    assert "--query" in opts and set(opts["--output"].choices) == {"json", "text", "table"}
    assert "--profile" in opts


def test_text_and_table_shapes():
    value = {"pipelineId": "df-1", "tags": [{"key": "a", "value": "1"}], "n": 2, "ok": True}
    assert text_lines(value) == ["df-1\t2\tTrue", "TAGS\ta\t1"]
    assert text_lines(["a", "b"]) == ["a\tb"] and text_lines("x") == ["x"] and text_lines([]) == []
    grid = table_text([{"id": "1", "name": "a"}, {"id": "22"}]).splitlines()
    assert grid[0].split() == ["id", "name"] and grid[3].split() == ["22"]
