"""Apply due lifecycle actions to the embedded store: transitions, archive moves, expirations.

One run: take the store's lock (one runner at a time across processes), finish moves a crash
interrupted (`TieredLocalStore.recover`), then for each bucket with a configuration list its
objects (metadata only) and apply the one action `due_actions` picks for each. A dry run changes
nothing and reports the same counts.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from tailrace.errors import ConflictError, TailraceError
from tailrace.lifecycle.rules import LifecycleConfiguration, ObjectMeta, due_actions, young_cutoff
from tailrace.storage.tiered import ARCHIVE_CLASSES, TieredLocalStore


@dataclass
class Tally:
    objects: int = 0
    bytes: int = 0


@dataclass
class RunReport:
    now: datetime
    dry_run: bool
    scanned: int = 0
    actions: dict[tuple[str, str, str], Tally] = field(default_factory=dict)
    """(bucket, rule ID, action) -> tally; action is "expire" or "transition:<CLASS>"."""
    recovered: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, bucket: str, rule_id: str, action: str, size: int) -> None:
        t = self.actions.setdefault((bucket, rule_id, action), Tally())
        t.objects += 1
        t.bytes += size

    def lines(self) -> list[str]:
        verb = "would apply" if self.dry_run else "applied"
        out = [f"lifecycle run at {self.now.isoformat()} ({verb}); {self.scanned} objects scanned"]
        for (bucket, rule_id, action), t in sorted(self.actions.items()):
            out.append(f"  {bucket}  rule {rule_id}  {action}  {t.objects} objects  {t.bytes} bytes")
        if not self.actions:
            out.append("  nothing due")
        fixes = {k: v for k, v in self.recovered.items() if v}
        if fixes:
            out.append("  recovered: " + ", ".join(f"{k}={v}" for k, v in sorted(fixes.items())))
        out += [f"  error: {e}" for e in self.errors]
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "actions": [
                {"bucket": b, "rule": r, "action": a, "objects": t.objects, "bytes": t.bytes}
                for (b, r, a), t in sorted(self.actions.items())
            ],
            "recovered": self.recovered,
            "errors": self.errors,
        }


@contextmanager
def runner_lock(store: TieredLocalStore) -> Iterator[None]:
    """An exclusive lock on the store: a second runner (any process) is refused, not queued."""
    store.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(store.root / ".lifecycle.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError("another lifecycle run holds the lock on this store; try again later")
        yield
    finally:
        os.close(fd)


def run(
    store: TieredLocalStore,
    configs: Mapping[str, LifecycleConfiguration],
    now: datetime,
    *,
    dry_run: bool = False,
    buckets: list[str] | None = None,
) -> RunReport:
    report = RunReport(now=now, dry_run=dry_run)
    with runner_lock(store):
        for bucket, cfg in sorted(configs.items()):
            if buckets and bucket not in buckets:
                continue
            if not dry_run:
                for k, v in store.recover(bucket, now=now).items():
                    report.recovered[k] = report.recovered.get(k, 0) + v
            _run_bucket(store, bucket, cfg, now, dry_run, report)
    return report


BATCH = 500
"""Moves applied together: one filesystem barrier per step of a batch instead of fsyncs per object."""


def _run_bucket(
    store: TieredLocalStore,
    bucket: str,
    cfg: LifecycleConfiguration,
    now: datetime,
    dry_run: bool,
    report: RunReport,
) -> None:
    pending: list[tuple[str, str, str, int]] = []  # key, "expire" or storage class, rule ID, size

    def flush() -> None:
        expire = [k for k, c, _, _ in pending if c == "expire"]
        archive = [(k, c) for k, c, _, _ in pending if c in ARCHIVE_CLASSES]
        classes = [(k, c) for k, c, _, _ in pending if c != "expire" and c not in ARCHIVE_CLASSES]
        results: dict[str, object] = dict(store.delete_many(bucket, expire)) if expire else {}
        results.update(store.archive_many(bucket, archive) if archive else [])
        results.update(store.set_class_many(bucket, classes) if classes else [])
        for key, what, rule_id, size in pending:
            got = results[key]
            if isinstance(got, TailraceError):
                # One object's failure is reported; the run goes on with the others.
                report.errors.append(f"s3://{bucket}/{key}: {got}")
            else:
                report.add(bucket, rule_id, "expire" if what == "expire" else f"transition:{what}", size)
        pending.clear()

    young = young_cutoff(cfg, now)
    for info in store.list(bucket, ""):
        report.scanned += 1
        if young is not None and info.modified >= young:
            continue  # too young for any rule: the usual case of a daily run
        meta = ObjectMeta(info.key, info.size, info.modified, info.storage_class)
        for act in due_actions(cfg, meta, now):
            what = "expire" if act.kind == "expire" else act.storage_class or "STANDARD"
            if dry_run:
                report.add(
                    bucket, act.rule_id, "expire" if what == "expire" else f"transition:{what}", info.size
                )
                continue
            pending.append((info.key, what, act.rule_id, info.size))
            if len(pending) >= BATCH:
                flush()
    if pending:
        flush()
