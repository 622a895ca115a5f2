"""Benchmark: loading and validating pipeline definitions.

    .venv/bin/python bench/definition_validate.py            # 43 samples x 20, a 1000-object definition x 5

Times (1) load_file + validate over the 43 published samples and (2) loads + validate of a
synthetic 1000-object definition (data nodes and activities chained by input/output, with
expressions). Median wall times go to bench/RESULTS.md (between the definition markers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tailrace.definition import load_file, loads, validate  # noqa: E402

SAMPLES = Path(os.environ.get("TAILRACE_COMPAT_DIR", REPO.parent / "shared" / "compat")) / "dp-samples"
RESULTS = REPO / "bench" / "RESULTS.md"


def synthetic(n: int) -> str:
    objects: list[dict] = [
        {
            "id": "Default",
            "scheduleType": "cron",
            "schedule": {"ref": "Daily"},
            "role": "r",
            "resourceRole": "rr",
        },
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2012-12-24T00:00:00"},
        {"id": "Pool", "type": "Ec2Resource"},
    ]
    for i in range(n // 2):
        objects.append(
            {
                "id": f"N{i}",
                "type": "S3DataNode",
                "directoryPath": f"s3://b/{i}/#{{format(@scheduledStartTime, 'YYYY-MM-dd')}}",
            }
        )
        act = {
            "id": f"A{i}",
            "type": "ShellCommandActivity",
            "runsOn": {"ref": "Pool"},
            "output": {"ref": f"N{i}"},
            "command": f"echo #{{output.directoryPath}} #{{myEnv}} {i}",
        }
        if i:
            act["input"] = {"ref": f"N{i - 1}"}
        objects.append(act)
    return json.dumps({"objects": objects, "parameters": [{"id": "myEnv", "default": "prod"}]})


def timed(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    files = sorted(SAMPLES.glob("*.json"))

    def samples() -> None:
        for f in files:
            validate(load_file(f))

    text = synthetic(args.objects)
    big = loads(text)
    errors = validate(big).errors
    assert not errors, errors[:3]
    t_samples = timed(samples, args.reps)
    t_load = timed(lambda: loads(text), 5)
    t_validate = timed(lambda: validate(big), 5)
    lines = [
        "<!-- definition:begin -->",
        "## definition: load + validate (bench/definition_validate.py)",
        "",
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}; medians.",
        "",
        "| work | time |",
        "|---|---|",
        f"| load_file + validate, all {len(files)} published samples | {t_samples * 1000:.0f} ms "
        f"({t_samples / len(files) * 1000:.1f} ms per file) |",
        f"| loads, {args.objects + 3}-object definition ({len(text) // 1024} KiB) | {t_load * 1000:.0f} ms |",
        f"| validate, same definition | {t_validate * 1000:.0f} ms |",
        "<!-- definition:end -->",
    ]
    block = "\n".join(lines)
    print(block)
    if args.no_write:
        return
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(r"<!-- definition:begin -->.*?<!-- definition:end -->", re.S)
    new = pattern.sub(block, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(new)


if __name__ == "__main__":
    main()
