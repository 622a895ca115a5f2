"""Acceptance: the seed log pipeline activated with a start two days in the past backfills the
two periods, then waits for the next; its outputs equal `tailrace run`'s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_runners import wait_until

from tailrace.clock import FrozenClock, parse_dp
from tailrace.config import Settings
from tailrace.definition import loads
from tailrace.runtime.runners import RunnerConfig, ServiceProcess
from tailrace.runtime.service import PipelineService
from tailrace.sample.demo import seed_definition_text, write_demo_logs
from tailrace.services import build_services
from tailrace.state import PipelineState, Status

NOW = parse_dp("2012-12-25T23:00:00")  # the next period starts in an hour
OUTPUTS = "memorycraft-us-log-archive"


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_seed_pipeline_backfills_two_days_then_waits_and_matches_tailrace_run(tmp_path):
    home = tmp_path / "service"
    write_demo_logs(home / "s3", days=3, per_hour=60)
    services = build_services(Settings(home=home))
    clock = FrozenClock(NOW)
    from tailrace.state import SqlStateStore

    store = SqlStateStore(services.sql_engine, clock=clock)
    service = PipelineService(store=store, home=home.resolve(), clock=clock)
    pid = service.create_pipeline("logs", "seed")
    assert not service.put_definition(pid, loads(seed_definition_text())).errored
    service.activate(pid, start_timestamp=parse_dp("2012-12-24T00:00:00"))
    proc = ServiceProcess(
        service=service,
        storage=services.storage,
        home=home.resolve(),
        config=RunnerConfig(workers=2, poll_interval=0.05, grace=1.0),
        engines=services.engines,
    )
    proc.start()
    try:

        def statuses() -> dict[str, Status]:
            with store.transaction(readonly=True) as tx:
                return {i.id: i.status for i in tx.instances.page(pid, limit=1000)}

        wait_until(
            lambda: len(statuses()) == 12 and set(statuses().values()) == {Status.FINISHED},
            timeout=180,
            what="two periods of the seed pipeline",
        )
    finally:
        proc.stop(30)
    days = {iid.rsplit("_", 1)[1][:10] for iid in statuses()}
    assert days == {"2012-12-24", "2012-12-25"}  # two periods; the third is not due yet
    with store.transaction(readonly=True) as tx:
        p = tx.pipelines.get(pid)
        emr = tx.attempts.for_instance(pid, "@emr-log_2012-12-24T00:00:00")
    assert p.state is PipelineState.SCHEDULED
    assert p.next_window_at == parse_dp("2012-12-26T00:00:00") - service.config.lookahead
    assert [a.cancel_reason for a in emr] == ["ShutDown"]  # the cluster's pool served both activities
    log = services.storage.read_bytes(
        f"s3://memorycraft-us-hive-log/pipeline/{pid}/archive/@archive_2012-12-24T00:00:00/"
        "@archive_2012-12-24T00:00:00_Attempt=1/attempt.log"
    )
    assert b"status: FINISHED" in log

    clean = tmp_path / "run"
    write_demo_logs(clean / "s3", days=3, per_hour=60)
    definition = tmp_path / "log-pipeline.json"
    definition.write_text(seed_definition_text())
    subprocess.run(
        [sys.executable, "-m", "tailrace", "run", str(definition), "--until", "2012-12-26T00:00:00", "-q"],
        env={**os.environ, "TAILRACE_HOME": str(clean)},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    expected = files(clean / "s3" / OUTPUTS)
    assert expected and files(home / "s3" / OUTPUTS) == expected
    services.close()
