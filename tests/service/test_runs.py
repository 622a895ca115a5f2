"""list-runs in one read (tailrace.api.aws.runs) gives the rows the AWS CLI builds from
QueryObjects and DescribeObjects, for every filter list-runs has."""

from __future__ import annotations

import pytest
from service_harness import definition, shell

from tailrace.api.aws import describe as aws
from tailrace.api.aws import runs as runs_module
from tailrace.api.aws.runs import list_runs, run_selectors
from tailrace.clock import parse_dp
from tailrace.runtime.errors import InvalidRequest
from tailrace.state import PipelineNotFound


def _through_the_aws_operations(service, pid, selectors):
    """What `aws datapipeline list-runs` does: every QueryObjects page, DescribeObjects 100 ids at
    a time, each object flattened (the last value of a key wins), sorted by scheduled start."""
    ids, marker = [], None
    while True:
        page = aws.query_objects(service, pid, "INSTANCE", selectors=selectors, limit=7, marker=marker)
        ids += page["ids"]
        marker = page.get("marker")
        if not page["hasMoreResults"]:
            break
    rows = []
    for i in range(0, len(ids), 100):
        for obj in aws.describe_objects(service, pid, ids[i : i + 100])["pipelineObjects"]:
            row = {"@id": obj["id"], "name": obj["name"]}
            for f in obj["fields"]:
                row[f["key"]] = f.get("stringValue", f.get("refValue"))
            rows.append(row)
    return sorted(rows, key=lambda r: (r.get("@scheduledStartTime") or "", r["name"]))


def _interval(a, b):
    return parse_dp(a), parse_dp(b)


FILTERS = [
    {},
    {"statuses": ["finished"]},
    {"statuses": ["FINISHED", "failed"]},
    {"statuses": ["waiting_on_dependencies"]},
    {"statuses": ["running", "cancelled"]},
    {"scheduled": _interval("2024-03-02T15:00:00", "2024-03-02T21:00:00")},
    {"started": _interval("2024-03-02T00:00:00", "2024-03-03T00:00:00")},
    {"started": _interval("2030-01-01T00:00:00", "2030-01-02T00:00:00")},
    {"statuses": ["failed"], "scheduled": _interval("2024-03-02T12:00:00", "2024-03-03T12:00:00")},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
def test_rows_are_those_of_query_and_describe(history, filters, monkeypatch):
    harness, pid = history
    monkeypatch.setattr(runs_module, "READ_PAGE", 3)  # the store is read in several pages
    selectors = run_selectors(**filters)
    expected = _through_the_aws_operations(harness.service, pid, selectors)
    got = list_runs(harness.service, pid, **filters)
    assert got == {"runs": expected, "truncated": False}
    if filters.get("statuses") == ["waiting_on_dependencies"]:
        assert expected and all(r["@status"] == "WAITING_ON_DEPENDENCIES" for r in expected)
        assert any("@waitingOn" in r for r in expected)  # the dependency is named, as described
    if not filters:
        assert len(expected) == len(harness.statuses(pid))


def test_a_limit_cuts_the_rows_and_says_so(history):
    harness, pid = history
    page = list_runs(harness.service, pid, limit=3)
    assert page["truncated"] is True and len(page["runs"]) == 3
    everything = list_runs(harness.service, pid)
    assert everything["truncated"] is False
    assert list_runs(harness.service, pid, limit=len(everything["runs"]))["truncated"] is False


def test_unknown_status_and_another_owner_are_refused(history):
    harness, pid = history
    with pytest.raises(InvalidRequest, match="'EXPLODED' is not an instance status"):
        run_selectors(statuses=["exploded"])
    with pytest.raises(PipelineNotFound):
        list_runs(harness.service, pid, owner="someone-else")


def test_data_nodes_preconditions_and_named_components_flatten_as_described(harness, monkeypatch):
    """Instances with inputs, outputs, preconditions, and components with names of their own."""
    pid = harness.pipeline(
        definition(
            {"id": "Ready", "type": "Exists", "name": "ready-check"},
            {
                "id": "In",
                "type": "S3DataNode",
                "directoryPath": "s3://b/in",
                "precondition": {"ref": "Ready"},
            },
            {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/out"},
            shell("Copy", name="copy-step", input={"ref": "In"}, output={"ref": "Out"}, maximumRetries="0"),
            start="2024-03-02T12:00:00",
            period="6 hours",
        )
    )
    harness.advance(0.5)
    harness.run_until_quiet(lambda task: "FINISHED")
    monkeypatch.setattr(runs_module, "READ_PAGE", 4)
    expected = _through_the_aws_operations(harness.service, pid, [])
    keys = {k for row in expected for k in row}
    assert {"input", "output", "precondition"} <= keys, keys
    assert list_runs(harness.service, pid) == {"runs": expected, "truncated": False}
