"""The activation preview: the REST route and `tailrace activate-pipeline --dry-run`, and the
confirmation a large backfill needs before activate-pipeline goes ahead."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from api_helpers import DEFINITION, T0, client_for
from rawhttp import send, signed_headers

from tailrace.clock import format_dp
from tailrace.definition import from_file_dict, to_wire

YEAR_AGO = "2025-01-05T00:00:00"  # T0 is 2026-01-05: a past start a year back backfills ~366 days


@pytest.fixture
def pending(world, cli):
    """A daily pipeline of the CLI's owner, defined and never activated."""
    dp = client_for(world.server.url, cli.key)
    pid = dp.create_pipeline(name="daily", uniqueId="daily")["pipelineId"]
    dp.put_pipeline_definition(pipelineId=pid, **to_wire(from_file_dict(DEFINITION)))
    return dp, pid


def preview(world, key, pid, body, *, limit=None):
    path = f"/api/v1/pipelines/{pid}/activation-preview" + (f"?limit={limit}" if limit is not None else "")
    url = world.server.url + path
    raw = json.dumps(body).encode()
    headers = signed_headers(
        url, raw, key.access_key_id, key.secret_access_key, headers={"Content-Type": "application/json"}
    )
    status, _, payload = send(url, body=raw, headers=headers)
    return status, json.loads(payload)


def _state(dp, pid):
    fields = dp.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"][0]["fields"]
    return {f["key"]: f.get("stringValue") for f in fields}["@pipelineState"]


def test_rest_preview_counts_lists_and_changes_nothing(world, cli, pending):
    dp, pid = pending
    start = T0 - timedelta(days=30)
    status, out = preview(
        world,
        cli.key,
        pid,
        {"startTimestamp": start.timestamp(), "parameterValues": [{"id": "myMsg", "stringValue": "x"}]},
        limit=3,
    )
    assert status == 200, out
    expected = world.service.preview_activation(pid, start_timestamp=start, parameter_values={"myMsg": "x"})
    assert out["periods"] == len(expected) >= 30 and out["complete"] is True
    assert out["instances"] == sum(len(w.instances) for w in expected)
    assert out["firstScheduledStart"] == format_dp(start)
    assert out["lastScheduledStart"] == format_dp(expected[-1].start)
    assert [w["instances"] for w in out["windows"]] == [list(w.instances) for w in expected[:3]]
    assert out["windows"][0] == {
        "index": 0,
        "scheduledStartTime": format_dp(start),
        "scheduledEndTime": format_dp(start + timedelta(days=1)),
        "runAt": format_dp(start),
        "instances": [f"@Hello_{format_dp(start)}"],
    }
    # Text timestamps work too (as in ActivatePipeline); the default lists 20 periods.
    status, again = preview(world, cli.key, pid, {"startTimestamp": format_dp(start)})
    assert status == 200 and again["periods"] == out["periods"] and len(again["windows"]) == 20
    assert _state(dp, pid) == "PENDING"
    assert dp.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"] == []


def test_rest_preview_is_owner_scoped_and_checks_its_body(world, cli, pending):
    _, pid = pending
    bob = world.keys.create("bob")
    assert preview(world, bob, pid, {})[0] == 404
    status, err = preview(world, cli.key, pid, {"startTimestamp": "yesterday"})
    assert status == 400 and "startTimestamp" in err["message"], err
    status, err = preview(world, cli.key, pid, {"parameterValues": [{"id": "myMsg"}]})
    assert status == 400 and "parameterValues[0].stringValue" in err["message"], err
    empty = client_for(world.server.url, cli.key).create_pipeline(name="e", uniqueId="e")["pipelineId"]
    status, err = preview(world, cli.key, empty, {})
    assert status == 400 and "no definition" in err["message"], err  # as ActivatePipeline says
    url = world.server.url + f"/api/v1/pipelines/{pid}/activation-preview"
    assert send(url, method="GET", headers=signed_headers(url, b"", "x", "y", method="GET"))[0] == 405


def test_openapi_describes_the_preview(world):
    _, _, raw = send(world.server.url + "/openapi.json", method="GET")
    doc = json.loads(raw)
    op = doc["paths"]["/api/v1/pipelines/{pipeline_id}/activation-preview"]["post"]
    assert op["operationId"] == "previewActivation"
    assert doc["components"]["schemas"]["ActivationPreview"]["required"][:2] == ["pipelineId", "periods"]


def test_dry_run_prints_the_backfill_and_does_not_activate(cli, pending):
    dp, pid = pending
    code, out, err = cli(
        "activate-pipeline",
        "--pipeline-id",
        pid,
        "--start-timestamp",
        YEAR_AGO,
        "--dry-run",
        "--show-periods",
        "2",
        "--output",
        "table",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{pid}: activating now would create ")
    periods = int(lines[0].split("create ")[1].split(" ")[0])
    assert periods >= 366
    assert lines[1] == f"scheduled starts {YEAR_AGO} to {lines[1].split(' to ')[1]}"
    assert "1       2025-01-05T00:00:00  2025-01-05T00:00:00  @Hello_2025-01-05T00:00:00" in out
    assert "@Hello_2025-01-06T00:00:00" in out and "@Hello_2025-01-07T00:00:00" not in out
    assert f"... and {periods - 2} more period(s)" in out
    assert "nothing was activated" in err
    code, out, _ = cli("activate-pipeline", "--pipeline-id", pid, "--start-timestamp", YEAR_AGO, "--dry-run")
    assert code == 0 and json.loads(out)["periods"] == periods  # JSON when not on a terminal
    assert _state(dp, pid) == "PENDING"


def test_a_large_backfill_is_refused_off_a_terminal_unless_confirmed(cli, pending):
    dp, pid = pending
    code, _, err = cli("activate-pipeline", "--pipeline-id", pid, "--start-timestamp", YEAR_AGO)
    assert code == 3
    assert "more than --backfill-threshold 50" in err and "--dry-run" in err and "--yes" in err
    assert _state(dp, pid) == "PENDING"
    code, _, err = cli(
        "activate-pipeline",
        "--pipeline-id",
        pid,
        "--start-timestamp",
        YEAR_AGO,
        "--backfill-threshold",
        "400",
    )
    assert code == 0, err
    assert _state(dp, pid) == "SCHEDULED"


def test_yes_skips_the_question(cli, pending):
    dp, pid = pending
    code, _, err = cli("activate-pipeline", "--pipeline-id", pid, "--start-timestamp", YEAR_AGO, "--yes")
    assert code == 0, err
    assert _state(dp, pid) == "SCHEDULED"


def test_a_small_backfill_activates_without_a_question(cli, pending):
    dp, pid = pending
    code, _, err = cli("activate-pipeline", "--pipeline-id", pid)  # the schedule starts 4 days back
    assert code == 0 and err == ""
    assert _state(dp, pid) == "SCHEDULED"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "activated"), [("y\n", True), ("yes\n", True), ("n\n", False), ("", False)]
)
def test_on_a_terminal_a_large_backfill_asks(cli, pending, monkeypatch, answer, activated):
    dp, pid = pending
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    code, out, err = cli(
        "activate-pipeline", "--pipeline-id", pid, "--start-timestamp", YEAR_AGO, "--show-periods", "1"
    )
    assert "@Hello_2025-01-05T00:00:00" in err and "Activate and create them? [y/N]" in err
    assert out == ""
    assert (code, _state(dp, pid)) == ((0, "SCHEDULED") if activated else (1, "PENDING"))
    if not activated:
        assert "not activated" in err
