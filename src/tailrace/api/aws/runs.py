"""`list-runs` in one read.

`aws datapipeline list-runs` asks QueryObjects for the ids of the instances its selectors pick
(status, actual and scheduled start), then DescribeObjects for them 100 at a time, and turns
each object into a row: {"@id": id, "name": name, key: value, ...}, the last value of a
repeated key winning. Over thousands of instances those round trips, and the field lists built
only to be flattened again, are most of the time. This builds the same rows straight from the
store in one transaction; a test holds them equal to the ones built through the AWS operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tailrace.api.aws.objects import Field, component_fields
from tailrace.api.aws.selectors import parse_selectors, to_store
from tailrace.clock import format_dp
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.reads import owned_pipeline
from tailrace.state import LISTING_FIELDS, Status, Transaction

if TYPE_CHECKING:
    from tailrace.runtime.service import PipelineService

MAX_RUNS = 100_000
"""The most rows one call returns (the answer says when there were more)."""
READ_PAGE = 5_000
STATUS_ALIASES = {"CANCELLED": "CANCELED"}
"""`aws datapipeline list-runs --status cancelled` sends CANCELLED; the service spells it CANCELED
(QueryObjects' @status selectors take both, as does the runs listing)."""


def run_selectors(
    *,
    statuses: Sequence[str] = (),
    started: tuple[datetime, datetime] | None = None,
    scheduled: tuple[datetime, datetime] | None = None,
) -> list[dict[str, Any]]:
    """The QueryObjects selectors `aws datapipeline list-runs` sends for these filters.

    :raises InvalidRequest: naming an unknown status.
    """
    selectors: list[dict[str, Any]] = []
    if started is not None:
        values = [format_dp(started[0]), format_dp(started[1])]
        selectors.append({"fieldName": "@actualStartTime", "operator": {"type": "BETWEEN", "values": values}})
    if scheduled is not None:
        values = [format_dp(scheduled[0]), format_dp(scheduled[1])]
        selectors.append(
            {"fieldName": "@scheduledStartTime", "operator": {"type": "BETWEEN", "values": values}}
        )
    if statuses:
        wanted = [STATUS_ALIASES.get(s.strip().upper(), s.strip().upper()) for s in statuses]
        unknown = [s for s in wanted if s not in Status.__members__]
        if unknown:
            raise InvalidRequest(
                f"status {unknown[0]!r} is not an instance status; choose from {', '.join(Status)}"
            )
        selectors.append({"fieldName": "@status", "operator": {"type": "EQ", "values": wanted}})
    return selectors


def list_runs(
    service: PipelineService,
    pipeline_id: str,
    *,
    statuses: Sequence[str] = (),
    started: tuple[datetime, datetime] | None = None,
    scheduled: tuple[datetime, datetime] | None = None,
    owner: str | None = None,
    limit: int = MAX_RUNS,
) -> dict[str, Any]:
    """The rows list-runs prints for the instances QueryObjects selects with run_selectors(...)
    of these filters, oldest scheduled start first (then by name): {"runs": [...], "truncated":
    bool}. With `owner`, another owner's pipeline is reported as missing."""
    where, rest = to_store(
        "INSTANCE", parse_selectors(run_selectors(statuses=statuses, started=started, scheduled=scheduled))
    )
    # Every list-runs filter is a store condition, so rows need no matching on their fields.
    assert not rest, rest
    limit = max(0, min(limit, MAX_RUNS))
    rows: list[dict[str, Any]] = []
    truncated = False
    flat: dict[str, dict[str, str]] = {}  # a component's shown fields, flattened
    with service.store.transaction(readonly=True) as tx:
        owned_pipeline(tx, pipeline_id, owner)
        components = {c.id: c for c in tx.components.list(pipeline_id)}
        after: str | None = None
        while not truncated:
            page = tx.instances.listing(pipeline_id, after=after, limit=READ_PAGE, where=where)
            finished = _finished(tx, pipeline_id, page)
            for inst in page:
                cid = inst[_COMPONENT]
                own = flat.get(cid)
                if own is None:
                    own = flat[cid] = _flatten(component_fields(cid, components, {}), {})
                if len(rows) == limit:
                    truncated = True
                    break
                rows.append(_flatten_instance(inst, finished, {"@id": inst[_ID], "name": inst[_ID], **own}))
            if len(page) < READ_PAGE:
                break
            after = page[-1][_ID]
    rows.sort(key=lambda r: (r.get("@scheduledStartTime") or "", r["name"]))
    return {"runs": rows, "truncated": truncated}


_ID, _COMPONENT, _STATUS = (LISTING_FIELDS.index(k) for k in ("id", "component_id", "status"))
_DEPS, _PRECONDITIONS = LISTING_FIELDS.index("depends_on"), LISTING_FIELDS.index("preconditions")
_WAITING, _FINISHED = Status.WAITING_ON_DEPENDENCIES.value, Status.FINISHED.value


def _finished(tx: Transaction, pipeline_id: str, page: list[tuple[Any, ...]]) -> set[str]:
    """The FINISHED instances among those the page's waiting instances wait on."""
    waiting = {d for i in page if i[_STATUS] == _WAITING for d in (*i[_DEPS], *i[_PRECONDITIONS])}
    if not waiting:
        return set()
    listed = {i[_ID]: i[_STATUS] for i in page if i[_ID] in waiting}
    found = tx.instances.find_many(pipeline_id, waiting - listed.keys())
    listed.update((k, v.status.value) for k, v in found.items())
    return {k for k, status in listed.items() if status == _FINISHED}


def _flatten(fields: list[Field], row: dict[str, str]) -> dict[str, str]:
    for f in fields:
        row[f["key"]] = f["stringValue"] if "stringValue" in f else f["refValue"]
    return row


def _flatten_instance(i: tuple[Any, ...], finished: set[str], row: dict[str, Any]) -> dict[str, Any]:
    """objects.instance_runtime and objects.waiting_on, flattened as list-runs does (the last
    value of a key wins), written out: this runs for every listed instance."""
    (iid, pid, component, type_, status, start, end, started, ended, attempts, tries, resource, version,
     group, error, head, cascade, deps, preconditions, inputs, outputs, node) = i  # fmt: skip
    row["@id"] = iid
    row["@sphere"] = "INSTANCE"
    row["@status"] = status
    row["type"] = type_
    row["@scheduledStartTime"] = start
    row["@scheduledEndTime"] = end
    if started is not None:
        row["@actualStartTime"] = started
    if ended is not None:
        row["@actualEndTime"] = ended
    row["@attemptCount"] = str(attempts)
    row["@triesLeft"] = str(tries)
    if resource is not None:
        row["@resourceId"] = resource
    row["@pipelineId"] = pid
    row["@version"] = str(version)
    if group is not None:
        row["workerGroup"] = group
    if error is not None:
        row["errorMessage"] = error
    if component:
        row["@componentParent"] = row["parent"] = component
    for key, ref in (("@headAttempt", head), ("@resource", resource), ("@cascadeFailedOn", cascade)):
        if ref:
            row[key] = ref
    for key, refs in (("input", inputs), ("output", outputs), ("precondition", preconditions)):
        for ref in refs:
            if ref:
                row[key] = ref
    if node:
        row["node"] = node
    if status == _WAITING:
        for d in (*deps, *preconditions):
            if d not in finished:
                row["@waitingOn"] = d
    return row
