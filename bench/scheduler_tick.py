"""The scheduler's cost per tick against the size of the history: the same due work with 1,000
and with 100,000 finished instances (and their attempts) in the store.

Two ticks are timed: an idle one (nothing due) and a busy one (20 instances whose run time
has come are evaluated and handed to runners). The history sits in the same pipeline as the
due work, the worst case for the pipeline-scoped queries.

    .venv/bin/python bench/scheduler_tick.py [--sizes 1000,100000] [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

from scheduler_common import database, machine, median, open_service, pipeline, workspace, write_section
from tailrace.runtime.scheduler import Scheduler
from tailrace.state import Attempt, Instance, Status

BUSY = 20
T0 = datetime(2020, 1, 1, tzinfo=UTC)


def record(pid: str, n: int, *, status: Status, now: datetime, prefix: str = "H") -> Instance:
    start = T0 + timedelta(minutes=n)
    finished = status is Status.FINISHED
    return Instance(
        pipeline_id=pid,
        id=f"@{prefix}_{start:%Y-%m-%dT%H:%M:%S}",
        component_id=prefix,
        category="ACTIVITY",
        type="ShellCommandActivity",
        window=n,
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=1),
        run_at=start,
        status=status,
        definition_version=1,
        queue="wg:wg",
        worker_group="wg",
        attempt_count=1 if finished else 0,
        head_attempt=f"@{prefix}_{start:%Y-%m-%dT%H:%M:%S}_Attempt=1" if finished else None,
        started_at=start if finished else None,
        ended_at=start + timedelta(seconds=5) if finished else None,
        due_at=None if finished else now - timedelta(seconds=1),
        spec={"max_active_instances": 1_000_000, "maximum_retries": 3},
        created_at=now,
        updated_at=now,
    )


def fill(service, pid: str, size: int, now: datetime) -> None:
    batch = 5000
    for first in range(0, size, batch):
        rows = [
            record(pid, n, status=Status.FINISHED, now=now) for n in range(first, min(size, first + batch))
        ]
        with service.store.transaction() as tx:
            tx.instances.add_many(rows)
            for r in rows:
                tx.attempts.add(
                    Attempt(
                        pipeline_id=pid,
                        id=r.head_attempt,
                        instance_id=r.id,
                        number=1,
                        status=Status.FINISHED,
                        task_id=f"t-{r.id}",
                        started_at=r.started_at,
                        ended_at=r.ended_at,
                    )
                )
        print(f"  history: {min(size, first + batch)}/{size}", file=sys.stderr, flush=True)


def measure(kind: str, size: int) -> dict[str, float]:
    with workspace("tailrace-tick-") as home, database(kind, home) as url:
        service = open_service(url, home)
        pid = pipeline(
            service,
            [{"id": "A", "type": "ShellCommandActivity", "command": "true"}],
            name="tick",
            period="1 day",
            startDateTime="2020-01-01T00:00:00",
            occurrences="1",
        )
        scheduler = Scheduler(store=service.store, transitions=service.transitions, clock=service.clock)
        scheduler.tick()  # the pipeline's own single window
        now = service.clock.now()
        fill(service, pid, size, now)
        idle, busy = [], []
        for _ in range(15):
            began = time.perf_counter()
            scheduler.tick()
            idle.append(time.perf_counter() - began)
        for round_ in range(10):
            fresh = [
                record(
                    pid, size + round_ * BUSY + n, status=Status.WAITING_ON_DEPENDENCIES, now=now, prefix="D"
                )
                for n in range(BUSY)
            ]
            with service.store.transaction() as tx:
                tx.instances.add_many(fresh)
            began = time.perf_counter()
            report = scheduler.tick()
            busy.append(time.perf_counter() - began)
            assert report.due == BUSY, report
            with service.store.transaction() as tx:  # done, so the next round starts alike
                for inst in fresh:
                    tx.instances.update(pid, inst.id, status=Status.FINISHED, due_at=None, ended_at=now)
        return {"idle": median(idle), "busy": median(busy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    rows = []
    for kind in kinds:
        for size in sizes:
            r = measure(kind, size)
            print(f"{kind} {size}: {r}", file=sys.stderr)
            rows.append(f"| {kind} | {size:,} | {r['idle'] * 1000:.1f} ms | {r['busy'] * 1000:.1f} ms |")
    body = "\n".join(
        [
            "## service: scheduler tick vs history (bench/scheduler_tick.py)",
            "",
            f"{machine()}. Median tick time with N finished instances (and N attempts) in the pipeline: idle (nothing",
            f"due) and busy ({BUSY} instances due and handed to runners). Due work is found through partial indexes",
            "that leave finished rows out, so the tick follows the due work, not the history.",
            "",
            "| database | finished instances | idle tick | busy tick |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("tick", body)


if __name__ == "__main__":
    main()
