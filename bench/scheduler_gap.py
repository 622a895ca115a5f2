"""Gap between a task finishing and its dependent starting, on the embedded defaults.

A chain of 10 no-op ShellCommandActivity (`true`), A0 -> A1 -> ... -> A9, run by the runners
`tailrace up` starts (SQLite, 4 task runners). The gap of each link is the dependent attempt's
start minus the upstream attempt's end, both as recorded by the service. For scale: Airflow 3
needs about 0.9 s between dependent tasks.

    .venv/bin/python bench/scheduler_gap.py [--runs 10] [--database sqlite|postgres] [--no-write]
"""

from __future__ import annotations

import argparse
import itertools
import sys

from scheduler_common import (
    attempts,
    database,
    embedded,
    machine,
    median,
    open_service,
    pct,
    pipeline,
    wait_finished,
    workspace,
    write_section,
)

LINKS = 10


def chain() -> list[dict]:
    objects = [{"id": "A0", "type": "ShellCommandActivity", "command": "true"}]
    for i in range(1, LINKS):
        objects.append(
            {
                "id": f"A{i}",
                "type": "ShellCommandActivity",
                "command": "true",
                "dependsOn": {"ref": f"A{i - 1}"},
            }
        )
    return objects


def run(kind: str, runs: int) -> dict[str, float]:
    gaps: list[float] = []
    chains: list[float] = []
    with workspace("tailrace-gap-") as home, database(kind, home) as url:
        service = open_service(url, home)
        proc = embedded(service, home)
        proc.start()
        try:
            for n in range(runs):
                pid = pipeline(service, chain(), name=f"gap{n}")
                wait_finished(service, pid, LINKS, timeout=120, progress=False)
                by_component = {a.instance_id.split("_")[0][1:]: a for a in attempts(service, pid)}
                ordered = [by_component[f"A{i}"] for i in range(LINKS)]
                for up, down in itertools.pairwise(ordered):
                    gaps.append((down.started_at - up.ended_at).total_seconds())
                chains.append((ordered[-1].ended_at - ordered[0].started_at).total_seconds())
        finally:
            proc.stop(30)
    return {
        "median": median(gaps),
        "p90": pct(gaps, 0.9),
        "max": max(gaps),
        "links": len(gaps),
        "chain": median(chains),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="chains to run (default 10)")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    rows = []
    for kind in kinds:
        r = run(kind, args.runs)
        print(f"{kind}: {r}", file=sys.stderr)
        rows.append(
            f"| {kind} | {r['median'] * 1000:.1f} ms | {r['p90'] * 1000:.1f} ms | {r['max'] * 1000:.1f} ms | "
            f"{r['chain']:.2f} s | {int(r['links'])} |"
        )
    body = "\n".join(
        [
            "## service: finish-to-start gap of dependent tasks (bench/scheduler_gap.py)",
            "",
            f"{machine()}. A 10-activity chain of no-op ShellCommandActivity (`true`) on the runners `tailrace up`",
            f"starts (scheduler + 4 task runners); {args.runs} chains; gap = dependent attempt's start - upstream",
            "attempt's end, as recorded by the service. Target: median under 50 ms on SQLite (Airflow 3: ~0.9 s).",
            "",
            "| database | median gap | p90 | max | whole chain (median) | links |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("gap", body)


if __name__ == "__main__":
    main()
