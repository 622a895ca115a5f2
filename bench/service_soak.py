"""Soak: kill -9 the scheduler and the workers at random moments during a backfill.

A 100-period backfill of a 3-step chain (A -> B -> C; each step writes its output file
atomically, B and C from the previous step's output) runs on a `tailrace scheduler` process
and worker processes sharing one database. For 20 rounds a random set of them is killed with
SIGKILL at a random moment and started again. Afterwards:

- every instance is FINISHED, with exactly one FINISHED attempt and no attempt left RUNNING;
- the output files equal those of a clean `tailrace run` of the same definition.

    .venv/bin/python bench/service_soak.py [--periods 100] [--rounds 20] [--database sqlite|postgres]

Exits 1 when a check fails. Writes its figures to bench/RESULTS.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import collections
import getpass
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from scheduler_common import attempts, counts, database, machine, open_service, workspace, write_section
from tailrace.definition import from_file_dict
from tailrace.state import Status

STEP = (
    "d=#{myOut}/#{format(@scheduledStartTime,'YYYY-MM-dd')}; mkdir -p $d; sleep 0.0$((RANDOM % 8)); "
    "BODY > $d/.NAME.$$ && mv $d/.NAME.$$ $d/NAME.txt"
)


def definition(periods: int) -> dict:
    def step(name: str, body: str, after: str | None) -> dict:
        obj = {
            "id": name.upper(),
            "type": "ShellCommandActivity",
            "command": STEP.replace("BODY", body).replace("NAME", name),
        }
        if after:
            obj["dependsOn"] = {"ref": after}
        return obj

    return {
        "objects": [
            {
                "id": "Default",
                "scheduleType": "cron",
                "schedule": {"ref": "Daily"},
                "workerGroup": "wg",
                "maximumRetries": "5",
            },
            {
                "id": "Daily",
                "type": "Schedule",
                "period": "1 day",
                "startDateTime": "2021-01-01T00:00:00",
                "occurrences": str(periods),
            },
            step("a", "echo a #{@scheduledStartTime}", None),
            step("b", "(cat $d/a.txt; echo b)", "A"),
            step("c", "(cat $d/b.txt; echo c)", "B"),
        ],
        "parameters": [{"id": "myOut", "type": "String"}],
    }


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.txt"))}


class Processes:
    def __init__(self, env: dict[str, str], workers: int, logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.names = ["scheduler"] + [f"worker{n}" for n in range(workers)]
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts = collections.Counter[str]()

    def start(self, name: str) -> None:
        self.starts[name] += 1
        cmd = [sys.executable, "-m", "tailrace"]
        if name == "scheduler":
            cmd += ["scheduler", "--lease", "1", "--poll", "0.2"]
        else:
            cmd += [
                "worker",
                "--worker-group",
                "wg",
                "--threads",
                "2",
                "--lease",
                "1",
                "--poll",
                "0.1",
                "--name",
                name,
            ]
        log = (self.logs / f"{name}-{self.starts[name]}.log").open("w")
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def soak(kind: str, periods: int, rounds: int, workers: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    with workspace("tailrace-soak-") as home, database(kind, home) as url:
        out, clean = home.parent / "out", home.parent / "clean"
        service = open_service(url, home)
        pid = service.create_pipeline("soak", f"soak-{seed}")
        defn = definition(periods)
        defn["values"] = {"myOut": str(out)}
        report = service.put_definition(pid, from_file_dict(defn))
        assert not report.errored, report.to_aws()
        env = {**os.environ, "TAILRACE_HOME": str(home), "TAILRACE_DATABASE_URL": url}
        # The steps write into this private workspace: run them as our own user (root allowed).
        env |= {"TAILRACE_EXECUTION__RUN_AS": getpass.getuser(), "TAILRACE_EXECUTION__ALLOW_ROOT": "true"}
        procs = Processes(env, workers, home.parent)
        for name in procs.names:
            procs.start(name)
        began = time.monotonic()
        service.activate(pid)
        kills = 0
        total = 3 * periods
        for n in range(rounds):
            # Spread the rounds over the whole backfill: round n strikes at a random moment once
            # about n/(rounds+1) of the work is done.
            target = total * (n + 1) / (rounds + 1) + rng.uniform(-0.5, 0.5) * total / (rounds + 1)
            while counts(service, pid).get(Status.FINISHED, 0) < target:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
            victims = rng.sample(procs.names, rng.randint(1, len(procs.names)))
            for name in victims:
                procs.kill(name)
                kills += 1
            time.sleep(rng.uniform(0.0, 0.5))
            for name in victims:
                procs.start(name)
            c = counts(service, pid)
            print(
                f"round {n + 1}: killed {', '.join(victims)}; {c.get(Status.FINISHED, 0)}/{3 * periods} finished",
                file=sys.stderr,
                flush=True,
            )
        deadline = time.monotonic() + 600
        while counts(service, pid).get(Status.FINISHED, 0) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - began
        procs.stop_all()
        time.sleep(0.5)  # commands orphaned by a kill finish their last (idempotent) write

        c = counts(service, pid)
        done = attempts(service, pid)
        finished_per_instance = collections.Counter(
            a.instance_id for a in done if a.status is Status.FINISHED
        )
        problems = []
        if c != {Status.FINISHED: total}:
            problems.append(f"instance statuses {dict(c)}")
        if len(finished_per_instance) != total or set(finished_per_instance.values()) != {1}:
            problems.append("an instance has no FINISHED attempt, or more than one")
        if any(a.status is Status.RUNNING or a.ended_at is None for a in done):
            problems.append("an attempt was left RUNNING")
        lost = sum(1 for a in done if a.error_id == "LeaseExpired")
        given_back = sum(1 for a in done if a.status is Status.CANCELED)
        # The clean run: the same definition through `tailrace run`, into another directory.
        (home.parent / "def.json").write_text(json.dumps(definition(periods)))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tailrace",
                "run",
                str(home.parent / "def.json"),
                "-q",
                "--parameter-values",
                f"myOut={clean}",
            ],
            env={**env, "TAILRACE_HOME": str(home.parent / "clean-home")},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        same = tree(out) == tree(clean) and len(tree(clean)) == total
        if not same:
            problems.append(f"outputs differ from a clean run ({len(tree(out))} vs {len(tree(clean))} files)")
        return {
            "database": kind,
            "periods": periods,
            "rounds": rounds,
            "kills": kills,
            "attempts": len(done),
            "lost": lost,
            "given_back": given_back,
            "seconds": elapsed,
            "problems": problems,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--periods", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results = [soak(kind, args.periods, args.rounds, args.workers, args.seed) for kind in kinds]
    rows = []
    for r in results:
        print(json.dumps(r), file=sys.stderr)
        verdict = (
            "every instance FINISHED once; outputs = clean run"
            if not r["problems"]
            else "; ".join(r["problems"])
        )
        rows.append(
            f"| {r['database']} | {r['periods']} x 3 | {r['rounds']} | {r['kills']} | {r['attempts']} | {r['lost']} | "
            f"{r['seconds']:.0f} s | {verdict} |"
        )
    body = "\n".join(
        [
            "## service: kill -9 soak (bench/service_soak.py)",
            "",
            f"{machine()}. A {args.periods}-period backfill of a 3-step chain on a `tailrace scheduler` process and",
            f"{args.workers} `tailrace worker` processes (lease 1 s); {args.rounds} rounds of SIGKILL to a random set",
            "of them at a random moment (spread over the backfill), then restart. Lost = attempts failed by",
            "an expired lease and run again.",
            "",
            "| database | instances | rounds | processes killed | attempts | lost | wall time | result |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("soak", body)
    sys.exit(1 if any(r["problems"] for r in results) else 0)


if __name__ == "__main__":
    main()
