"""kill -9 during lifecycle runs: `tailrace lifecycle run` (a subprocess) over many objects is
killed at random points several times; after each kill every object must be in exactly one place
as the store answers (hot and readable, or archived with its compressed copy, or deleted when its
rule expires it), and the next uninterrupted run must finish the work.

    PYTHONPATH=src .venv/bin/python bench/lifecycle_soak.py --objects 100000 --kills 5

Objects are of four kinds, interleaved in key order (told apart by size, one rule each): GLACIER
after 7 days (a real archive move), expire after 30 days, STANDARD_IA after 30 days (a class
record only), and no rule. They are written straight into the store's directory (no fsync), 60
days old.
tests/lifecycle/test_crash_soak.py runs this with fewer objects.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tailrace.errors import StorageError
from tailrace.storage.tiered import TieredLocalStore

BUCKET = "soak"
NOW = "2026-03-01T00:00:00Z"
# Four kinds of object, told apart by size so that they interleave in key order and a kill can
# land in the middle of any kind of move: GLACIER after 7 days (a real archive move), expire after
# 30, STANDARD_IA after 30 (a class record only), and no rule.
KINDS = ("GLACIER", None, "STANDARD_IA", "STANDARD")


def _sized(low: int) -> dict[str, object]:
    return {"And": {"Prefix": "logs/", "ObjectSizeGreaterThan": low - 1, "ObjectSizeLessThan": low + 100}}


RULES = {
    "Rules": [
        {"ID": "cold", "Status": "Enabled", "Filter": _sized(100),
         "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}]},
        {"ID": "old", "Status": "Enabled", "Filter": _sized(200), "Expiration": {"Days": 30}},
        {"ID": "ia", "Status": "Enabled", "Filter": _sized(300),
         "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]},
    ]
}  # fmt: skip


def tailrace(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TAILRACE_HOME": str(home)}
    env.pop("TAILRACE_DATABASE_URL", None)
    env.pop("TAILRACE_S3_ENDPOINT_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tailrace", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def key_of(i: int) -> str:
    return f"logs/2026{(i // 1000) % 12 + 1:02d}{(i // 40) % 28 + 1:02d}/host-{i % 24:02d}_{i}.log"


def kind_of(key: str) -> str | None:
    return KINDS[int(key.rsplit("_", 1)[1].removesuffix(".log")) % 4]


def body_of(key: str) -> bytes:
    """100-199 bytes for the first kind, 200-299 for the second, ...; derived from the key."""
    i = int(key.rsplit("_", 1)[1].removesuffix(".log"))
    size = 100 * (i % 4 + 1) + i % 97
    return (f"{key} GET /index.html 200\n".encode() * 20)[:size]


def seed(root: Path, n: int) -> list[str]:
    """n objects straight into the store's layout, 60 days old (the store reads size and mtime)."""
    ts = datetime.fromisoformat(NOW).timestamp() - 60 * 86400
    keys = [key_of(i) for i in range(n)]
    made: set[Path] = set()
    for key in keys:
        path = root / BUCKET / key
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(body_of(key))
        os.utime(path, (ts, ts))
    return keys


def check(store: TieredLocalStore, keys: list[str], *, final: bool) -> dict[str, int]:
    """Every object in exactly one place as the store answers. Returns counts per state."""
    listed: dict[str, str] = {}
    for info in store.list(BUCKET, ""):
        assert info.key not in listed, f"{info.key} listed twice"
        listed[info.key] = info.storage_class
    states: dict[str, int] = {}
    for key in keys:
        want = kind_of(key)
        got = listed.pop(key, None)
        if got is None:
            assert want is None, f"{key} is gone but no rule expires it"
            assert not store.archive_path(BUCKET, key).exists(), f"{key} deleted but its archive copy stayed"
            state = "deleted"
        elif got == "GLACIER":
            assert want == "GLACIER", f"{key} archived by no rule"
            with gzip.open(store.archive_path(BUCKET, key)) as gz:
                assert gz.read() == body_of(key), f"{key}: archive copy differs"
            try:
                store.get(BUCKET, key)
                raise AssertionError(f"{key} is archived and readable without a restore")
            except StorageError as exc:
                assert "InvalidObjectState" in str(exc), exc
            state = "archived"
        else:
            assert got in ("STANDARD", want), f"{key} in class {got}"
            assert store.get(BUCKET, key) == body_of(key), f"{key}: hot copy differs"
            state = got.lower()
        if final:
            done = {None: "deleted", "GLACIER": "archived"}.get(want, (want or "").lower())
            assert state == done, f"{key} is {state} after the final run, not {done}"
        states[state] = states.get(state, 0) + 1
    assert not listed, f"objects nobody wrote: {sorted(listed)[:5]}"
    if final:
        for area in (".archive", ".tiers", ".restored", BUCKET):
            left = [p for p in (store.root / area).rglob(".*") if p.is_file()]
            assert not left, f"temporary files left in {area}: {left[:3]}"
        hot = {
            p.relative_to(store.root / BUCKET).as_posix()
            for p in (store.root / BUCKET).rglob("*")
            if p.is_file()
        }
        assert not any(kind_of(k) in ("GLACIER", None) for k in hot), "an archived or expired object left hot"
    return states


class Lines(list[str]):
    """The report, also printed as it grows (a soak is long)."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)


def soak(objects: int, kills: int, seed_value: int) -> list[str]:
    rnd = random.Random(seed_value)
    lines = Lines()
    with tempfile.TemporaryDirectory(prefix="lifecycle-soak-") as tmp:
        home = Path(tmp)
        put = tailrace(home, "s3api", "put-bucket-lifecycle-configuration", "--bucket", BUCKET,
                       "--lifecycle-configuration", json.dumps(RULES))  # fmt: skip
        _, err = put.communicate(timeout=120)
        assert put.returncode == 0, err
        began = time.perf_counter()
        keys = seed(home / "s3", objects)
        lines.append(f"seeded {objects:,} objects in {time.perf_counter() - began:.1f} s")
        store = TieredLocalStore(home / "s3")
        killed = 0
        while killed < kills:
            proc = tailrace(home, "lifecycle", "run", "--now", NOW)
            began = time.perf_counter()
            delay = rnd.uniform(1.0, 1.5 + objects / 2000)  # start-up and recovery take the first second
            try:
                proc.wait(timeout=delay)
                out, err = proc.communicate()
                lines.append(f"run finished before its kill at {delay:.1f} s (rc {proc.returncode})")
                assert proc.returncode == 0, out + err
                break  # nothing left to interrupt
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                killed += 1
            states = check(store, keys, final=False)
            lines.append(f"kill -9 #{killed} at {delay:.1f} s: consistent; {states}")
        began = time.perf_counter()
        proc = tailrace(home, "lifecycle", "run", "--now", NOW)
        out, err = proc.communicate(timeout=3600)
        assert proc.returncode == 0, out + err
        lines.append(
            f"final run: {time.perf_counter() - began:.1f} s; " + " | ".join(out.strip().splitlines())
        )
        states = check(store, keys, final=True)
        lines.append(f"every object in exactly one place: {states}")
        again = tailrace(home, "lifecycle", "run", "--now", NOW)
        out, err = again.communicate(timeout=3600)
        assert again.returncode == 0 and "nothing due" in out, out + err
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = ap.parse_args()
    began = time.perf_counter()
    lines = soak(args.objects, args.kills, args.seed)
    lines.append(f"soak passed in {time.perf_counter() - began:.0f} s")
    if not args.no_write:
        from scheduler_common import write_section

        body = "\n".join(
            [
                "## Lifecycle: kill -9 soak (bench/lifecycle_soak.py)",
                "",
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, shared 2-core VM, "
                f"`--objects {args.objects} --kills {args.kills} --seed {args.seed}`:",
                "",
                *(f"    {line}" for line in lines),
            ]
        )
        write_section("lifecycle_soak", body)


if __name__ == "__main__":
    main()
