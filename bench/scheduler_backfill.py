"""Backfill: 365 daily periods x 3 no-op activities (A -> B -> C in each period) on the
embedded defaults (SQLite, the runners `tailrace up` starts), from activation to the last
instance FINISHED. Target: under 60 s.

    .venv/bin/python bench/scheduler_backfill.py [--periods 365] [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import sys
import time

from scheduler_common import (
    attempts,
    database,
    embedded,
    machine,
    open_service,
    pipeline,
    wait_finished,
    workspace,
    write_section,
)


def objects() -> list[dict]:
    return [
        {"id": "A", "type": "ShellCommandActivity", "command": "true"},
        {"id": "B", "type": "ShellCommandActivity", "command": "true", "dependsOn": {"ref": "A"}},
        {"id": "C", "type": "ShellCommandActivity", "command": "true", "dependsOn": {"ref": "B"}},
    ]


def run(kind: str, periods: int) -> dict[str, float]:
    with workspace("tailrace-backfill-") as home, database(kind, home) as url:
        service = open_service(url, home)
        proc = embedded(service, home)
        proc.start()
        try:
            began = time.monotonic()
            pid = pipeline(
                service,
                objects(),
                name="backfill",
                period="1 day",
                startDateTime="2020-01-01T00:00:00",
                occurrences=str(periods),
            )
            total = 3 * periods
            elapsed = time.monotonic() - began + wait_finished(service, pid, total, timeout=900)
            done = attempts(service, pid)
            assert len(done) == total and len({a.instance_id for a in done}) == total, "an instance ran twice"
        finally:
            proc.stop(30)
    return {"seconds": elapsed, "tasks": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--periods", type=int, default=365)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    rows = []
    for kind in kinds:
        r = run(kind, args.periods)
        print(f"{kind}: {r}", file=sys.stderr)
        rows.append(
            f"| {kind} | {int(r['tasks'])} | {r['seconds']:.1f} s | {r['tasks'] / r['seconds']:.0f} |"
        )
    body = "\n".join(
        [
            "## service: backfill (bench/scheduler_backfill.py)",
            "",
            f"{machine()}. {args.periods} daily periods x 3 no-op ShellCommandActivity (A -> B -> C each period,",
            "maxActiveInstances 1, so periods run oldest first and overlap by stage), scheduler + 4 task runners",
            "as `tailrace up` starts them; from ActivatePipeline to the last instance FINISHED. Target: under 60 s.",
            "",
            "| database | tasks | wall time | tasks/s |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("backfill", body)


if __name__ == "__main__":
    main()
