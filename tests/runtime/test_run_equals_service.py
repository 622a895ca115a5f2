"""`tailrace run` and the service give the same statuses, outputs and attempt logs for one
definition: the seed pipeline, the AWS samples that run here, a retry and a cascade failure.

The one-shot side is LocalRunner (what `tailrace run` calls). The service side is a pipeline
created, defined and activated through PipelineService on its own SQLite store, driven by the
scheduler's tick and an in-process task runner on a frozen clock that the test moves to the
store's next wakeup when nothing is ready (tests/service's harness, plus real attempts).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tailrace.clock import FrozenClock, format_dp
from tailrace.config import Settings
from tailrace.definition import PipelineDefinition, load_file, loads
from tailrace.runtime.activation import RESOURCE_QUEUE, resource_queue
from tailrace.runtime.local import LocalRunner, one_shot_definition
from tailrace.runtime.runners import queues_for
from tailrace.runtime.worker import Worker, WorkerOptions
from tailrace.sample.accesslog import hits, write_fluentd_objects
from tailrace.sample.demo import seed_definition_text
from tailrace.services import Services
from tailrace.state import SqlStateStore, Status, create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from service_harness import Harness

from compat_samples import SAMPLES

PID = "df-EQUAL00000000000000"
NOW = datetime(2024, 3, 3, 12, 0, tzinfo=UTC)


def one_shot(home: Path, defn: PipelineDefinition, *, until: datetime | None, values: Any = None) -> Any:
    services = Services(Settings(home=home))
    runner = LocalRunner(
        storage=services.storage,
        home=home,
        engines=services.engines,
        hive_engine=services.settings.hive_engine,
        clock=FrozenClock(NOW),
    )
    try:
        report = runner.run(defn, values=values, until=until, pipeline_id=PID)
    finally:
        services.close()
    return {r.instance.id: r.status for r in report.results}


def service(home: Path, defn: PipelineDefinition, *, start: datetime, values: Any = None) -> dict[str, str]:
    """The service on its own store; the definition carries the run's documented one-shot defaults
    and, for a run with --until, the same bound as endDateTime (what the demo's copy does)."""
    services = Services(Settings(home=home))
    clock = FrozenClock(start)
    store = SqlStateStore(create_engine(f"sqlite:///{home / 'state.db'}"), clock=clock)
    h = Harness(store=store, home=home.resolve(), clock=clock, lease=timedelta(days=1))
    try:
        h.service.create_pipeline("p", "u", pipeline_id=PID)
        report = h.service.put_definition(PID, one_shot_definition(defn))
        assert not report.errored, report.to_aws()
        h.service.activate(PID, parameter_values=values)
        worker = Worker(
            service=h.service,
            queues=queues_for(("*",), service_tasks=True),
            storage=services.storage,
            home=home.resolve(),
            options=WorkerOptions(runner_id="svc", hostname="svc-host"),
            engines=services.engines,
            hive_engine=services.settings.hive_engine,
        )
        for _ in range(1000):
            h.tick()
            ran = False
            while (
                res := h.service.claim([RESOURCE_QUEUE], runner_id="host", hostname="svc-host")
            ) is not None:
                worker.queues.append(resource_queue(PID, res.instance.id))
                ran = True
            while (task := h.service.claim(worker.queues, runner_id="svc", hostname="svc-host")) is not None:
                worker.execute(task, threading.Event())
                ran = True
            if ran:
                continue
            statuses = h.statuses(PID)
            if all(
                s in {"FINISHED", "FAILED", "CASCADE_FAILED", "CANCELED", "TIMEDOUT", "SKIPPED"}
                for s in statuses.values()
            ):
                return statuses
            # Runners poll: a retry delay's end is a wakeup for them, not a scheduler timer.
            with store.transaction(readonly=True) as tx:
                waiting = tx.instances.in_status(PID, {Status.WAITING_FOR_RUNNER})
            wakes = [w for w in (h.scheduler.next_wakeup(), *(i.ready_at for i in waiting)) if w is not None]
            wake = min(wakes, default=None)
            if wake is None:
                return statuses
            clock.set(max(wake, clock.now()))
        raise AssertionError("the service did not settle")
    finally:
        store.close()
        store.engine.dispose()
        services.close()


def files(root: Path) -> dict[str, bytes]:
    """Every object in the embedded object store but the logs (compared apart), by path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "s3").rglob("*"))
        if p.is_file() and p.name not in ("attempt.log", "actions.log")
    }


def attempt_logs(root: Path) -> dict[str, str]:
    """Attempt logs by path, without what names the runner or the moment (header, timings)."""
    out = {}
    for p in sorted(root.rglob("attempt.log")):
        lines = p.read_text().splitlines()[1:]  # the first line names the runner and host
        text = "\n".join(lines)
        text = re.sub(r"\d+(\.\d+)? s\b", "<t> s", text)
        text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?", "<time>", text)
        text = text.replace(str(root.resolve()), "<home>")
        out[str(p.relative_to(root))] = text
    return out


def compare(
    tmp_path: Path,
    defn: PipelineDefinition,
    *,
    until: datetime | None,
    service_defn: PipelineDefinition,
    start: datetime,
    values: Any = None,
    seed: Any = None,
) -> dict[str, str]:
    a, b = tmp_path / "run", tmp_path / "service"
    for home in (a, b):
        home.mkdir()
        if seed is not None:
            seed(home)
    inputs = set(files(a))  # the seeded logs (gzip stamps their write time): outputs only
    ran = one_shot(a, defn, until=until, values=values)
    served = service(b, service_defn, start=start, values=values)
    assert ran == served
    outputs = {k: v for k, v in files(a).items() if k not in inputs}
    assert outputs == {k: v for k, v in files(b).items() if k not in inputs}
    assert attempt_logs(a) == attempt_logs(b)
    return ran


def bounded(defn: PipelineDefinition, until: datetime) -> PipelineDefinition:
    objects = tuple(
        dataclasses.replace(o, fields={**o.fields, "endDateTime": format_dp(until)})
        if o.fields.get("type") == "Schedule"
        else o
        for o in defn.objects
    )
    return dataclasses.replace(defn, objects=objects)


def test_seed_pipeline(tmp_path):
    day1 = datetime(2012, 12, 24, tzinfo=UTC)

    def seed(home: Path) -> None:
        by_host = {
            f"ip-10-0-0-{n}": list(hits(day1, day1 + timedelta(days=2), per_hour=30, seed=n)) for n in (1, 2)
        }
        write_fluentd_objects(home / "s3" / "memorycraft-us-log" / "logs", by_host)

    defn = loads(seed_definition_text(), source="log-pipeline.json")
    until = datetime(2012, 12, 26, tzinfo=UTC)
    ran = compare(tmp_path, defn, until=until, service_defn=bounded(defn, until), start=NOW, seed=seed)
    assert set(ran.values()) == {"FINISHED"} and len(ran) == 12
    assert (tmp_path / "run" / "s3" / "memorycraft-us-log-archive" / "stats" / "2012-12-25").is_dir()


RETRY = {
    "objects": [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "wg"},
        {"id": "S", "type": "Schedule", "startDateTime": "2024-03-02T00:00:00", "period": "1 day"},
        # Fails on its first two tries (a counter file in the data directory), then succeeds.
        {
            "id": "Flaky",
            "type": "ShellCommandActivity",
            "maximumRetries": "2",
            "retryDelay": "5 minutes",
            "command": "n=$(cat $HOME_DIR/count 2>/dev/null || echo 0); echo $((n+1)) > $HOME_DIR/count; "
            "echo try $((n+1)); test $n -ge 2",
        },
        {
            "id": "After",
            "type": "ShellCommandActivity",
            "dependsOn": {"ref": "Flaky"},
            "command": "echo after",
        },
    ]
}


def test_retry(tmp_path):
    until = datetime(2024, 3, 3, tzinfo=UTC)
    a, b = tmp_path / "run", tmp_path / "service"
    for home in (a, b):
        home.mkdir()
    # The counter lives in each side's data directory (the logs show it as <home>).
    ran = one_shot(a, loads(json.dumps(RETRY).replace("$HOME_DIR", str(a.resolve()))), until=until)
    served = service(
        b, bounded(loads(json.dumps(RETRY).replace("$HOME_DIR", str(b.resolve()))), until), start=NOW
    )
    assert (
        ran == served == {"@Flaky_2024-03-02T00:00:00": "FINISHED", "@After_2024-03-02T00:00:00": "FINISHED"}
    )
    assert attempt_logs(a) == attempt_logs(b)
    assert len([p for p in attempt_logs(a) if "@Flaky" in p]) == 3


CASCADE = {
    "objects": [
        {
            "id": "Default",
            "scheduleType": "cron",
            "schedule": {"ref": "S"},
            "workerGroup": "wg",
            "failureAndRerunMode": "cascade",
            "maximumRetries": "1",
            "retryDelay": "2 minutes",
        },
        {"id": "S", "type": "Schedule", "startDateTime": "2024-03-01T00:00:00", "period": "1 day"},
        {
            "id": "Out",
            "type": "S3DataNode",
            "directoryPath": "s3://b/out/#{format(@scheduledStartTime,'YYYY-MM-dd')}",
        },
        {
            "id": "Make",
            "type": "ShellCommandActivity",
            "output": {"ref": "Out"},
            "stage": "true",
            "command": "echo made > ${OUTPUT1_STAGING_DIR}/x.txt",
        },
        {
            "id": "Break",
            "type": "ShellCommandActivity",
            "dependsOn": {"ref": "Make"},
            "command": "echo broken >&2; exit 4",
        },
        {"id": "Then", "type": "ShellCommandActivity", "dependsOn": {"ref": "Break"}, "command": "echo then"},
        {"id": "Last", "type": "ShellCommandActivity", "dependsOn": {"ref": "Then"}, "command": "echo last"},
    ]
}


def test_cascade_failure(tmp_path):
    defn = loads(json.dumps(CASCADE), source="cascade.json")
    until = datetime(2024, 3, 3, tzinfo=UTC)
    ran = compare(tmp_path, defn, until=until, service_defn=bounded(defn, until), start=NOW)
    for day in ("2024-03-01", "2024-03-02"):
        assert ran[f"@Make_{day}T00:00:00"] == "FINISHED"
        assert ran[f"@Break_{day}T00:00:00"] == "FAILED"
        assert ran[f"@Then_{day}T00:00:00"] == ran[f"@Last_{day}T00:00:00"] == "CASCADE_FAILED"
    assert len([p for p in attempt_logs(tmp_path / "run") if "@Break" in p]) == 4  # 2 periods x 2 tries
    assert (tmp_path / "run" / "s3" / "b" / "out" / "2024-03-02" / "x.txt").read_text() == "made\n"


# The published samples that run here once their download commands (wget from GitHub, given as
# parameters) are replaced by local ones; diagnose_pipeline hard-codes a download, so it is left out.
SAMPLE_FILES = [
    "EFSBackup__1-Node-EFSBackupPipeline.json",
    "EFSBackup__1-Node-EFSRestorePipeline.json",
    "EFSBackup__2-Node-EFSBackupPipeline.json",
    "EFSBackup__2-Node-EFSRestorePipeline.json",
    "EFSBackup__3-Node-EFSBackupPipeline.json",
    "json-to-dynamodb__definition.json",
]


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_published_sample(tmp_path, name):
    if not (SAMPLES / name).is_file():
        pytest.skip(f"the AWS samples are not at {SAMPLES} (set TAILRACE_COMPAT_DIR)")
    defn = load_file(SAMPLES / name)
    values = {
        p.id: f"echo {p.id} $1 $2 $3 $4 $5"
        for p in defn.parameters
        if str(p.attributes.get("default", "")).startswith("wget")
    }
    # FIRST_ACTIVATION_DATE_TIME or ondemand: the first period starts at activation, now.
    ran = compare(tmp_path, defn, until=None, service_defn=defn, start=NOW, values=values or None)
    assert ran and all(s in {"FINISHED", "FAILED", "CASCADE_FAILED"} for s in ran.values())
