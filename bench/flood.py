"""One owner floods a real `tailrace up`; another owner's new pipeline must still run at once.

The flood: a pipeline whose 15-minute schedule starts two years back (70,000 periods, two no-op
activities each, maxActiveInstances 5), activated with the per-owner limits raised out of the way,
so that the scheduler itself is measured, not the limits. (A start in year 1, as in issue 11, is
refused under any limit an activation can count up to; the default limits refuse both.) Once the flood has built up a backlog, a second
owner activates a daily pipeline; measured through the API (boto3, SigV4), with the database
read for the attempt's start:

- time from the second owner's ActivatePipeline to its first attempt starting (goal < 5 s);
- how long DeactivatePipeline of the flood takes to answer (goal < 1 s), and how long until the
  flood's backlog is canceled and the pipeline INACTIVE;
- `database is locked` lines in the server's log (goal: none);
- with the default limits, what ActivatePipeline of the same flood answers.

    .venv/bin/python bench/flood.py [--db sqlite|postgres|both] [--build-up 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler_common import database, machine, workspace, write_section
from tailrace.state import PipelineState, SqlStateStore, Status, create_engine

RAISED = {
    "TAILRACE_LIMITS_INSTANCES_PER_ACTIVATION": "1000000",
    "TAILRACE_LIMITS_INSTANCES_PER_HOUR": "1000000000",
    "TAILRACE_LIMITS_RUNNING_ATTEMPTS": "1000",
}


def _objects(
    start: str, period: str, activities: int, max_active: str, group: str = "wg"
) -> list[dict[str, Any]]:
    def obj(oid: str, **fields: str | dict[str, str]) -> dict[str, Any]:
        out: list[dict[str, str]] = []
        for k, v in fields.items():
            out.append(
                {"key": k, "refValue": v["ref"]} if isinstance(v, dict) else {"key": k, "stringValue": v}
            )
        return {"id": oid, "name": oid, "fields": out}

    objs = [
        obj("Default", scheduleType="cron", schedule={"ref": "Every"}, workerGroup=group),
        obj("Every", type="Schedule", period=period, startDateTime=start),
    ]
    objs += [
        obj(f"A{n}", type="ShellCommandActivity", command="true", maxActiveInstances=max_active)
        for n in range(activities)
    ]
    return objs


def _env(home: Path, url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "TAILRACE_HOME": str(home), "TAILRACE_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    env.update(extra)
    return env


def _key(env: dict[str, str], owner: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "tailrace", "keys", "create", "--owner", owner, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@contextmanager
def _up(env: dict[str, str], home: Path, *args: str) -> Iterator[tuple[str, Path]]:
    log = home / "up.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tailrace",
                "up",
                "--s3-port",
                "off",
                "--port",
                "0",
                "--workers",
                "4",
                "--grace",
                "5",
                *args,
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            url = None
            for _ in range(600):
                text = log.read_text()
                if "listening on " in text:
                    url = text.split("listening on ")[1].split()[0]
                    break
                if proc.poll() is not None:
                    raise SystemExit(f"tailrace up ended:\n{text}")
                time.sleep(0.05)
            if url is None:
                raise SystemExit("tailrace up did not say where it listens")
            yield url, log
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def _client(url: str, key: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "datapipeline",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )


def _pipeline(client: Any, name: str, objects: list[dict[str, Any]]) -> str:
    pid = client.create_pipeline(name=name, uniqueId=f"{name}-{time.time_ns()}")["pipelineId"]
    answer = client.put_pipeline_definition(pipelineId=pid, pipelineObjects=objects)
    if answer["errored"]:
        raise SystemExit(f"{name}: {answer['validationErrors']}")
    return pid


def run(kind: str, build_up: float, scenario: str) -> dict[str, Any]:
    """scenario 'runs': the flood's tasks run on the runners everyone shares; 'waits': no runner
    serves the flood's worker group, so its backlog only grows (deactivation's worst case)."""
    with workspace("tailrace-flood-") as home, database(kind, home) as url:
        env = _env(home, url, RAISED)
        keys = {owner: _key(env, owner) for owner in ("flood", "other")}
        store = SqlStateStore(create_engine(url))
        today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00")
        serve = ("--worker-group", "wg") if scenario == "waits" else ()
        group = "flood" if scenario == "waits" else "wg"
        with _up(env, home, *serve) as (endpoint, log):
            flood, other = _client(endpoint, keys["flood"]), _client(endpoint, keys["other"])
            two_years = (datetime.now(UTC) - timedelta(days=730)).strftime("%Y-%m-%dT00:00:00")
            fpid = _pipeline(flood, "flood", _objects(two_years, "15 minutes", 2, "5", group))
            flood.activate_pipeline(pipelineId=fpid)
            time.sleep(build_up)  # let the flood build its backlog and fill the runners
            opid = _pipeline(other, "other", _objects(today, "1 day", 1, "1"))
            began = time.monotonic()
            other.activate_pipeline(pipelineId=opid)
            first_run = None
            while time.monotonic() - began < 120:
                with store.transaction(readonly=True) as tx:
                    if tx.attempts.page(opid, limit=1):
                        first_run = time.monotonic() - began
                        break
                time.sleep(0.02)
            with store.transaction(readonly=True) as tx:
                backlog = sum(tx.instances.count(fpid).values())
                finished = tx.instances.count(fpid).get(Status.FINISHED, 0)
            began = time.monotonic()
            flood.deactivate_pipeline(pipelineId=fpid)
            deactivate = time.monotonic() - began
            inactive = None
            while time.monotonic() - began < 300:
                with store.transaction(readonly=True) as tx:
                    if tx.pipelines.get(fpid).state is PipelineState.INACTIVE:
                        inactive = time.monotonic() - began
                        break
                time.sleep(0.05)
            locked = log.read_text().count("database is locked")
        store.close()
        store.engine.dispose()
        refused = _refusal(home, url)
    return {
        "db": kind,
        "scenario": scenario,
        "backlog": backlog,
        "finished": finished,
        "first_run": first_run,
        "deactivate": deactivate,
        "inactive": inactive,
        "locked": locked,
        "refused": refused,
    }


def _refusal(home: Path, url: str) -> str:
    """What ActivatePipeline of the flood answers under the default limits."""
    from tailrace.runtime.errors import LimitExceeded
    from tailrace.runtime.service import PipelineService

    store = SqlStateStore(create_engine(url))
    service = PipelineService(store=store, home=home)
    pid = service.create_pipeline("flood-default-limits", f"u-{time.time_ns()}", owner="flood")
    from tailrace.definition import from_wire

    service.put_definition(
        pid, from_wire({"pipelineObjects": _objects("0001-01-01T00:00:00", "15 minutes", 2, "5")})
    )
    try:
        service.activate(pid)
        return "accepted (!)"
    except LimitExceeded as exc:
        return str(exc)
    finally:
        store.close()
        store.engine.dispose()


def _s(value: float | None) -> str:
    return "not within the bound" if value is None else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--build-up", type=float, default=10.0, metavar="SECONDS")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows = [run(kind, args.build_up, scenario) for kind in kinds for scenario in ("runs", "waits")]
    for row in rows:
        print(row, file=sys.stderr)
    body = [
        "## control: one owner's flood vs another owner (bench/flood.py)",
        "",
        f"{machine()}. A real `tailrace up` (4 task runners) and boto3 clients of two owners. The flood:",
        "15-minute periods from two years back, two no-op ShellCommandActivity (maxActiveInstances 5), with",
        "the per-owner limits raised (TAILRACE_LIMITS_*) so the scheduler itself is measured. After",
        f"{args.build_up:g} s of flood, the other owner activates a daily pipeline. Goals: first run < 5 s,",
        "DeactivatePipeline < 1 s, no `database is locked`. Flood *runs*: its tasks run on the runners",
        "everyone shares. Flood *waits*: no runner serves its worker group, so its backlog only grows.",
        "",
        "| database | flood | flood instances at deactivation (finished) | other owner's first run | "
        "DeactivatePipeline answered | flood INACTIVE after | `database is locked` lines |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        body.append(
            f"| {r['db']} | {r['scenario']} | {r['backlog']:,} ({r['finished']:,}) | {_s(r['first_run'])} | {_s(r['deactivate'])} "
            f"| {_s(r['inactive'])} | {r['locked']} |"
        )
    body += [
        "",
        "With the default limits, ActivatePipeline of the issue's flood (15 minutes from year 1) answers:",
        "",
    ]
    body.append(f"> {rows[0]['refused']}")
    write_section("control:flood", "\n".join(body))


if __name__ == "__main__":
    main()
