"""The archive tier and the lifecycle runner on the embedded store, with a stepped clock."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tailrace.clock import FrozenClock
from tailrace.errors import ConflictError, NotFoundError
from tailrace.lifecycle import runner
from tailrace.lifecycle.rules import MIN_SIZE_VARIES, parse_configuration
from tailrace.storage.tiered import ObjectStateError, TieredLocalStore

RULE = {
    "Rules": [
        {
            "ID": "raw-logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 365},
        }
    ]
}
START = datetime(2026, 3, 1, tzinfo=UTC)


def _seed(store: TieredLocalStore, days: int = 4) -> dict[str, tuple[bytes, datetime]]:
    """The seed's layout: logs/%Y%m%d/host-%H_N.gz, each file's mtime its creation time."""
    made: dict[str, tuple[bytes, datetime]] = {}
    for d in range(days):
        for hour in (0, 13, 23):
            when = START + timedelta(days=d, hours=hour, minutes=30)
            key = f"logs/{when:%Y%m%d}/host-{when:%H}_1.gz"
            body = gzip.compress(f"GET /{key} 200\n".encode() * 50)
            store.put("weblogs", key, body)
            ts = when.timestamp()
            os.utime(store.hot_path("weblogs", key), (ts, ts))
            made[key] = (body, when)
    store.put("weblogs", "other/keep.txt", b"not under logs/")
    return made


def _due_midnight(created: datetime, days: int) -> datetime:
    return datetime(created.year, created.month, created.day, tzinfo=UTC) + timedelta(days=days + 1)


def test_day_by_day_archive_read_restore_and_expiry(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    store = TieredLocalStore(tmp_path / "s3", now=clock.now)
    made = _seed(store)
    cfg = {"weblogs": parse_configuration(RULE, minimum_object_size=MIN_SIZE_VARIES)}
    for step in range(14):
        now = START + timedelta(days=step)
        clock.set(now)
        report = runner.run(store, cfg, now)
        assert not report.errors
        for key, (body, created) in made.items():
            info = store.head("weblogs", key)
            assert info is not None
            archived = now >= _due_midnight(created, 7)
            assert info.storage_class == ("GLACIER" if archived else "STANDARD"), (key, now)
            assert info.size == len(body)
            if archived:
                assert not store.hot_path("weblogs", key).exists()
                with pytest.raises(ObjectStateError, match=r"InvalidObjectState.*tailrace s3 restore"):
                    store.get("weblogs", key)
            else:
                assert store.get("weblogs", key) == body
        listed = {i.key: i.storage_class for i in store.list("weblogs", "logs/")}
        assert set(listed) == set(made)
    assert store.head("weblogs", "other/keep.txt").storage_class == "STANDARD"  # type: ignore[union-attr]

    # Restore one for 2 days: readable now, archived copy kept; unreadable after the expiry.
    key = next(iter(made))
    clock.set(datetime(2026, 3, 20, 15, tzinfo=UTC))
    expiry = store.restore("weblogs", key, 2)
    assert expiry == datetime(2026, 3, 23, tzinfo=UTC)
    assert store.get("weblogs", key) == made[key][0]
    assert store.head("weblogs", key).storage_class == "GLACIER"  # type: ignore[union-attr]
    clock.set(expiry)
    runner.run(store, cfg, expiry)
    with pytest.raises(ObjectStateError):
        store.get("weblogs", key)
    assert not store.restored_path("weblogs", key).exists()

    # Expiry after 365 days deletes, from the archive tier too.
    late = _due_midnight(made[key][1], 365)
    report = runner.run(store, cfg, late - timedelta(seconds=1))
    assert store.head("weblogs", key) is not None
    report = runner.run(store, cfg, late)
    assert store.head("weblogs", key) is None
    assert not store.archive_path("weblogs", key).exists()
    assert ("weblogs", "raw-logs", "expire") in report.actions


def test_dry_run_changes_nothing_and_counts_bytes(tmp_path: Path) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    made = _seed(store, days=2)
    cfg = {"weblogs": parse_configuration(RULE, minimum_object_size=MIN_SIZE_VARIES)}
    now = START + timedelta(days=30)
    report = runner.run(store, cfg, now, dry_run=True)
    tally = report.actions[("weblogs", "raw-logs", "transition:GLACIER")]
    assert tally.objects == len(made)
    assert tally.bytes == sum(len(b) for b, _ in made.values())
    assert all(i.storage_class == "STANDARD" for i in store.list("weblogs", ""))
    assert "would apply" in report.lines()[0]


def test_readable_class_transition_keeps_the_object_readable(tmp_path: Path) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    store.put("b", "k", b"x" * 200_000)
    ts = START.timestamp()
    os.utime(store.hot_path("b", "k"), (ts, ts))
    cfg = {
        "b": parse_configuration(
            {
                "Rules": [
                    {
                        "ID": "ia",
                        "Status": "Enabled",
                        "Filter": {},
                        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
                    }
                ]
            }
        )
    }
    runner.run(store, cfg, START + timedelta(days=31))
    assert store.head("b", "k").storage_class == "STANDARD_IA"  # type: ignore[union-attr]
    assert store.get("b", "k") == b"x" * 200_000


def test_put_over_an_archived_object_replaces_it(tmp_path: Path) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    store.put("b", "k", b"old")
    store.archive("b", "k", "DEEP_ARCHIVE")
    store.put("b", "k", b"new")
    assert store.get("b", "k") == b"new"
    assert store.head("b", "k").storage_class == "STANDARD"  # type: ignore[union-attr]
    assert not store.archive_path("b", "k").exists()


def test_restore_refuses_hot_and_missing_objects(tmp_path: Path) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    store.put("b", "hot", b"x")
    with pytest.raises(ObjectStateError, match="not archived"):
        store.restore("b", "hot", 1)
    with pytest.raises(NotFoundError):
        store.restore("b", "missing", 1)


@pytest.mark.parametrize("crash_at", ["after_archive_copy", "after_record"])
def test_a_crash_mid_move_leaves_one_tier_and_the_next_run_finishes(
    tmp_path: Path, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    store.put("b", "k", b"payload" * 100)
    real_write = store._write_record

    class Crash(BaseException):
        pass

    def crashing_write(bucket: str, key: str, rec: object, **kw: bool) -> None:
        if crash_at == "after_archive_copy":
            raise Crash
        real_write(bucket, key, rec, **kw)  # type: ignore[arg-type]
        raise Crash

    monkeypatch.setattr(store, "_write_record", crashing_write)
    with pytest.raises(Crash):
        store.archive("b", "k", "GLACIER")
    monkeypatch.setattr(store, "_write_record", real_write)

    # In exactly one tier through the store, and listed once.
    info = store.head("b", "k")
    assert [i.key for i in store.list("b", "")] == ["k"]
    if crash_at == "after_archive_copy":
        assert info.storage_class == "STANDARD"  # type: ignore[union-attr]
        assert store.get("b", "k") == b"payload" * 100
    else:
        assert info.storage_class == "GLACIER"  # type: ignore[union-attr]
        with pytest.raises(ObjectStateError):
            store.get("b", "k")
    fixed = store.recover("b")
    assert sum(fixed.values()) == 1
    hot, archived = store.hot_path("b", "k").exists(), store.archive_path("b", "k").exists()
    assert hot != archived
    if archived:
        store.restore("b", "k", 1)
        assert store.get("b", "k") == b"payload" * 100


def test_one_runner_at_a_time(tmp_path: Path) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    with runner.runner_lock(store), pytest.raises(ConflictError, match="another lifecycle run"):
        runner.run(store, {}, START)


def test_kill_9_mid_run_loses_nothing_and_the_next_run_finishes(tmp_path: Path) -> None:
    """A real `tailrace lifecycle run` killed with SIGKILL part-way through 800 archive moves."""
    import json
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    store = TieredLocalStore(home / "s3")
    ts = START.timestamp()
    bodies = {}
    for i in range(800):
        key = f"logs/20260301/host-{i:05d}.gz"
        bodies[key] = f"line {i}\n".encode() * 20
        store.put("weblogs", key, bodies[key])
        os.utime(store.hot_path("weblogs", key), (ts, ts))
    env = {**os.environ, "TAILRACE_HOME": str(home)}
    env.pop("TAILRACE_DATABASE_URL", None)
    env.pop("TAILRACE_S3_ENDPOINT_URL", None)
    cmd = [sys.executable, "-m", "tailrace"]
    rules = json.dumps(RULE)
    put = [*cmd, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "weblogs"]
    put += ["--lifecycle-configuration", rules, "--transition-default-minimum-object-size", MIN_SIZE_VARIES]
    subprocess.run(put, env=env, check=True, capture_output=True)
    run_cmd = [*cmd, "lifecycle", "run", "--now", "2026-03-20T00:00:00Z"]
    proc = subprocess.Popen(run_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    archive = home / "s3" / ".archive" / "weblogs" / "logs" / "20260301"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if archive.is_dir() and sum(1 for _ in archive.iterdir()) > 100:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def check(after_recovery: bool) -> None:
        listed = {i.key: i.storage_class for i in store.list("weblogs", "")}
        assert set(listed) == set(bodies)  # nothing lost, nothing listed twice
        for key, cls in listed.items():
            hot = store.hot_path("weblogs", key).exists()
            rec = store.record("weblogs", key)
            if cls == "STANDARD":
                assert store.get("weblogs", key) == bodies[key]
                assert rec is None
            else:
                assert store.archive_path("weblogs", key).exists()
                if after_recovery:
                    assert not hot
                with pytest.raises(ObjectStateError):
                    store.get("weblogs", key)

    check(after_recovery=False)
    done = subprocess.run(run_cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    check(after_recovery=True)
    assert all(i.storage_class == "GLACIER" for i in store.list("weblogs", ""))
    leftovers = [p for p in (home / "s3" / "weblogs").rglob("*") if p.is_file()]
    assert leftovers == []


def test_readers_of_files_and_the_facade_fail_clearly_on_archived_objects(tmp_path: Path) -> None:
    from tailrace.storage import Storage

    storage = Storage(home=tmp_path)
    store = storage.s3
    assert isinstance(store, TieredLocalStore)
    storage.write_bytes("s3://weblogs/logs/20260301/host-00_1.gz", b"data")
    store.archive("weblogs", "logs/20260301/host-00_1.gz", "GLACIER")
    assert storage.exists("s3://weblogs/logs/20260301/host-00_1.gz")  # as S3: archived objects exist
    with pytest.raises(
        ObjectStateError, match=r"GLACIER.*tailrace s3 restore s3://weblogs/logs/20260301/host-00_1.gz"
    ):
        storage.read_bytes("s3://weblogs/logs/20260301/host-00_1.gz")
    with pytest.raises(ObjectStateError):
        storage.resolve("s3://weblogs/logs/20260301/host-00_1.gz").local_path  # noqa: B018
    store.restore("weblogs", "logs/20260301/host-00_1.gz", 1)
    assert storage.read_bytes("s3://weblogs/logs/20260301/host-00_1.gz") == b"data"


def test_listing_streams_in_s3_key_order_with_archived_objects_merged(tmp_path: Path) -> None:
    store = TieredLocalStore(tmp_path / "s3")
    keys = ["a-c", "a.b", "a/x", "a/y/z", "ab", "b/1", "b/2"]
    for k in reversed(keys):
        store.put("b", k, k.encode())
    store.archive("b", "a/x", "GLACIER")
    store.archive("b", "b/2", "DEEP_ARCHIVE")
    listed = [(i.key, i.storage_class) for i in store.list("b", "")]
    assert [k for k, _ in listed] == sorted(keys)
    assert dict(listed)["a/x"] == "GLACIER" and dict(listed)["b/2"] == "DEEP_ARCHIVE"
    assert [i.key for i in store.list("b", "a")] == ["a-c", "a.b", "a/x", "a/y/z", "ab"]
    assert [i.key for i in store.list("b", "a/")] == ["a/x", "a/y/z"]
    assert [i.key for i in store.list("b", "a/y")] == ["a/y/z"]
    assert [i.key for i in store.list("b", "b/2")] == ["b/2"]
