"""Scale-out: 4 `tailrace worker` processes (2 runner threads each) and a `tailrace scheduler`
process on one PostgreSQL drain 2,000 no-op tasks; checks that no task ran twice.

20 no-op ShellCommandActivity components x 100 daily periods (maxActiveInstances 5). Afterwards:
every instance FINISHED with exactly one attempt, 2,000 RUNNING transitions in the event log,
and how the work spread over the processes.

    .venv/bin/python bench/scheduler_drain.py [--tasks 2000] [--workers 4] [--database postgres|sqlite|both]
"""

from __future__ import annotations

import argparse
import collections
import getpass
import os
import signal
import subprocess
import sys
import time

from scheduler_common import (
    attempts,
    database,
    machine,
    open_service,
    pipeline,
    wait_finished,
    workspace,
    write_section,
)
from tailrace.events.model import InstanceStatusChanged

COMPONENTS = 20


def run(kind: str, tasks: int, workers: int) -> dict[str, object]:
    periods = tasks // COMPONENTS
    with workspace("tailrace-drain-") as home, database(kind, home) as url:
        service = open_service(url, home)
        objects = [
            {"id": f"T{i:02d}", "type": "ShellCommandActivity", "command": "true", "maxActiveInstances": "5"}
            for i in range(COMPONENTS)
        ]
        pid = pipeline(
            service,
            objects,
            name="drain",
            period="1 day",
            startDateTime="2020-01-01T00:00:00",
            occurrences=str(periods),
            activate=False,
        )
        env = {**os.environ, "TAILRACE_HOME": str(home), "TAILRACE_DATABASE_URL": url}
        # The steps write into this private workspace: run them as our own user (root allowed).
        env |= {"TAILRACE_EXECUTION__RUN_AS": getpass.getuser(), "TAILRACE_EXECUTION__ALLOW_ROOT": "true"}
        cmd = [sys.executable, "-m", "tailrace"]
        procs = [subprocess.Popen([*cmd, "scheduler", "--poll", "0.2"], env=env, stdout=subprocess.DEVNULL)]
        procs += [
            subprocess.Popen(
                [
                    *cmd,
                    "worker",
                    "--worker-group",
                    "wg",
                    "--threads",
                    "2",
                    "--poll",
                    "0.2",
                    "--name",
                    f"w{n}",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
            )
            for n in range(workers)
        ]
        try:
            time.sleep(1.0)  # let the processes start before the clock starts
            began = time.monotonic()
            service.activate(pid)
            elapsed = (
                time.monotonic() - began + wait_finished(service, pid, periods * COMPONENTS, timeout=900)
            )
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait(60)
        done = attempts(service, pid)
        per_instance = collections.Counter(a.instance_id for a in done)
        twice = [i for i, n in per_instance.items() if n > 1]
        running = [
            r
            for r in service.store.events_after(0, pipeline_id=pid, limit=1_000_000)
            if isinstance(r.event, InstanceStatusChanged) and r.event.new == "RUNNING"
        ]
        by_process = collections.Counter(a.runner_id.split("/")[0] for a in done)
        return {
            "seconds": elapsed,
            "tasks": len(per_instance),
            "attempts": len(done),
            "twice": len(twice),
            "running_transitions": len(running),
            "spread": sorted(by_process.values(), reverse=True),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="postgres")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    kinds = ["postgres", "sqlite"] if args.database == "both" else [args.database]
    rows = []
    for kind in kinds:
        r = run(kind, args.tasks, args.workers)
        print(f"{kind}: {r}", file=sys.stderr)
        ok = r["twice"] == 0 and r["attempts"] == r["tasks"] == r["running_transitions"]
        rows.append(
            f"| {kind} | {r['tasks']} | {r['attempts']} | {r['twice']} | {r['seconds']:.1f} s | "
            f"{r['tasks'] / r['seconds']:.0f} | {' / '.join(map(str, r['spread']))} | {'yes' if ok else 'NO'} |"
        )
    body = "\n".join(
        [
            "## service: worker processes draining tasks (bench/scheduler_drain.py)",
            "",
            f"{machine()}. {args.workers} `tailrace worker` processes (2 runner threads each) + 1 `tailrace scheduler`",
            f"process; {COMPONENTS} no-op ShellCommandActivity x {args.tasks // COMPONENTS} daily periods, maxActiveInstances 5;",
            "from activation to the last FINISHED. Claims are `FOR UPDATE SKIP LOCKED` on PostgreSQL.",
            "",
            "| database | tasks | attempts | ran twice | wall time | tasks/s | tasks per process | each once |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("drain", body)


if __name__ == "__main__":
    main()
