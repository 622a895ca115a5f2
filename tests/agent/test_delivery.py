"""Exactly-once by construction: crashes at each step of the commit and of shipping, store
outages with backoff and back-pressure, deterministic object keys, flush modes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tailrace.agent.buffer import Buffer
from tailrace.agent.output import StoreSink
from tailrace.errors import StorageError

from .conftest import Env, append, multiset, reference_apache2, run_until_idle, sample_lines


class Crash(BaseException):
    """Stands for the process dying at that point (nothing after it runs)."""


def expected(lines: list[str]) -> list[str]:
    return [reference_apache2(line) for line in lines]  # type: ignore[misc]


def abandon(agent) -> None:
    """What a SIGKILL leaves: no shutdown, files closed by the kernel."""
    for src in agent.sources:
        src.tailer.close()
    for out in agent.outputs.values():
        out.buffer.close()
    agent.locks.release()


def test_crash_after_buffering_before_the_position_commit_reads_the_batch_again_once(env: Env, monkeypatch):
    lines = sample_lines(300)
    append(env.log, lines[:100])
    agent = env.agent()
    agent.step()
    append(env.log, lines[100:])

    def crash(*a, **k):
        raise Crash

    monkeypatch.setattr(agent.sources[0].posfile, "write", crash)
    with pytest.raises(Crash):
        agent.step()  # the second batch is fsync'ed in the buffer, its position is not
    abandon(agent)
    agent = env.agent()
    agent.start()
    assert agent.outputs["match.1"].buffer.staged  # the first batch is still buffered
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert len(env.shipped()) == 300


def test_crash_after_upload_before_the_chunk_is_deleted_replaces_the_same_object(env: Env, monkeypatch):
    lines = sample_lines(100)
    append(env.log, lines)
    agent = env.agent()
    agent.step()
    agent.seal_all()

    def crash(self, chunk):
        raise Crash

    monkeypatch.setattr(Buffer, "complete", crash)
    with pytest.raises(Crash):
        agent.flush()
    abandon(agent)
    before = env.objects()
    assert len(before) == 1
    monkeypatch.undo()
    agent = env.agent()
    run_until_idle(agent, env.clock)
    assert env.objects() == before  # re-uploaded under the key it was given, not _1
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_keys_are_unique_and_stable_across_chunks_and_restarts(env: Env):
    lines = sample_lines(400, per_hour=100_000)  # all within one hour
    cfg = env.config(
        match={"chunk_limit_size": "4k", "check_object": False}, source={"read_block_size": "8k"}
    )
    append(env.log, lines[:200])
    agent = env.agent(cfg)
    run_until_idle(agent, env.clock)
    agent.shutdown(0)
    first = env.objects()
    append(env.log, lines[200:])
    agent = env.agent(cfg)
    run_until_idle(agent, env.clock)
    objects = env.objects()
    indices = sorted(int(o.rsplit("_", 1)[1].split(".")[0]) for o in objects)
    assert indices == list(range(len(objects)))  # _0, _1, ... no gap reused, no duplicate
    assert set(first) <= set(objects)
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_check_object_skips_keys_written_by_someone_else(env: Env):
    lines = sample_lines(10)
    key = env.home / "s3/memorycraft-log/logs/20240115/web1-00_0.gz"
    key.parent.mkdir(parents=True)
    key.write_bytes(gzip.compress(b"older\n"))
    append(env.log, lines)
    run_until_idle(env.agent(), env.clock)
    assert env.objects() == ["logs/20240115/web1-00_0.gz", "logs/20240115/web1-00_1.gz"]


class FlakySink(StoreSink):
    """A store that is down while `down` is set (an injected fault, like a refused connection)."""

    down = False
    attempts = 0

    def put(self, key, path, *, gzip):
        self.attempts += 1
        if self.down:
            raise StorageError(f"S3 PUT {key} failed: connection refused")
        super().put(key, path, gzip=gzip)

    def exists(self, key):
        if self.down:
            raise StorageError("S3 HEAD failed: connection refused")
        return super().exists(key)


def test_store_outage_retries_with_backoff_pauses_reading_and_loses_nothing(env: Env):
    lines = sample_lines(3000, per_hour=20_000)
    cfg = env.config(
        match={
            "total_limit_size": "20k",
            "chunk_limit_size": "4k",
            "retry_wait": "1s",
            "retry_max_interval": "8s",
        },
        source={"read_block_size": "16k"},
    )
    sink = FlakySink(env.storage.resolve("s3://memorycraft-log/logs/"))
    sink.down = True
    agent = env.agent(cfg, sinks={"match.1": sink})
    append(env.log, lines)
    waits = []
    for _ in range(40):
        agent.step()
        agent.seal_all()
        agent.flush()
        out = agent.outputs["match.1"]
        waits.append(out.next_try - agent.now())
        env.clock.advance(1)
    src = agent.status()["sources"][0]
    assert src["paused"] and "total_limit_size" in src["paused"]  # back-pressure, not dropping
    assert 0 < src["lines_read"] < 3000
    assert src["lag_bytes"] > 0
    assert max(waits) <= 8.0 and waits[0] == 1.0 and 4.0 in waits  # 1, 2, 4, 8, capped
    assert agent.status()["outputs"][0]["last_error"].startswith("StorageError")
    assert env.objects() == []
    sink.down = False
    env.clock.advance(10)
    run_until_idle(agent, env.clock, rounds=1000)
    for _ in range(50):
        agent.step()
        agent.seal_all()
        agent.flush(force=True)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert agent.status()["sources"][0]["lines_shipped"] == 3000


def test_lazy_flush_ships_a_slice_after_its_end_plus_wait(env: Env):
    lines = sample_lines(100, per_hour=60)  # spans 0h..1h
    cfg = env.config(match={"flush_mode": "lazy", "time_slice_wait": "10m"})
    env.clock.set(env.clock.now().replace(year=2024, month=1, day=15, hour=1, minute=5))
    append(env.log, lines)
    agent = env.agent(cfg)
    agent.step()
    agent.flush()
    assert env.objects() == []  # hour 00 ends at 01:00, plus 10 minutes
    env.clock.advance(6 * 60)
    agent.step()
    agent.flush()
    assert env.objects() == ["logs/20240115/web1-00_0.gz"]
    env.clock.advance(3600)
    agent.step()
    agent.flush()
    assert env.objects() == ["logs/20240115/web1-00_0.gz", "logs/20240115/web1-01_0.gz"]
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_interval_flush_ships_after_flush_interval(env: Env):
    append(env.log, sample_lines(5))
    agent = env.agent(env.config(match={"flush_mode": "interval", "flush_interval": "30s"}))
    agent.step()
    agent.flush()
    assert env.objects() == []
    env.clock.advance(31)
    agent.step()
    agent.flush()
    assert len(env.objects()) == 1


def test_error_sink_can_be_a_store_prefix(env: Env):
    good = sample_lines(5)
    append(env.log, [good[0], "not a log line", good[1]])
    append(env.log, [b"\x00\xff\xfebinary garbage"])
    append(env.log, good[2:])
    cfg = env.config(system={"error_path": "s3://memorycraft-log/errors/"})
    run_until_idle(env.agent(cfg), env.clock)
    assert env.shipped() == expected(good)
    errors = env.shipped(prefix="errors/")
    assert len(errors) == 2
    assert '"reason":"pattern not matched"' in errors[0] and '"line":"not a log line"' in errors[0]
    assert '"reason":"invalid UTF-8"' in errors[1] and "\\\\xff" in errors[1]


def test_stdout_and_file_outputs(env: Env, tmp_path: Path):
    import io

    lines = sample_lines(3)
    append(env.log, lines)
    stream = io.StringIO()
    cfg = env.config(match={"type": "stdout", "path": None})
    run_until_idle(env.agent(cfg, stdout=stream), env.clock)
    assert stream.getvalue().splitlines() == expected(lines)

    out = tmp_path / "out" / "access"
    env2 = Env(tmp_path / "second")
    append(env2.log, lines)
    cfg = env2.config(
        match={"type": "file", "path": str(out), "store_as": None, "time_slice_format": "%Y%m%d"}
    )
    run_until_idle(env2.agent(cfg), env2.clock)
    assert [p.name for p in out.parent.iterdir()] == ["access.20240115_0.log"]
    assert (out.parent / "access.20240115_0.log").read_text().splitlines() == expected(lines)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 256 KiB filesystem (tmpfs) for the buffer; skipped where mounting is not allowed."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_buffer_disk_pauses_reading_reports_and_loses_nothing(env: Env, small_disk: Path):
    lines = sample_lines(4000, per_hour=50_000)
    cfg = env.config(
        match={"buffer_path": str(small_disk / "buffer"), "store_as": "text", "chunk_limit_size": "32k"},
        source={"read_block_size": "32k"},
    )
    sink = FlakySink(env.storage.resolve("s3://memorycraft-log/logs/"))
    sink.down = True
    agent = env.agent(cfg, sinks={"match.1": sink})
    append(env.log, lines)
    for _ in range(60):
        agent.step()
        agent.seal_all()
        agent.flush()
        env.clock.advance(1)
    src = agent.status()["sources"][0]
    assert any(e["kind"] == "disk_full" for e in src["events"])
    assert "No space left" in (src["last_error"] or "")
    assert 0 < src["lines_read"] < 4000
    sink.down = False
    for _ in range(400):
        env.clock.advance(2)
        agent.step()
        agent.seal_all()
        agent.flush(force=True)
        if agent.status()["sources"][0]["lines_shipped"] == 4000:
            break
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_monitor_endpoint_serves_prometheus_and_json(env: Env):
    import json
    import urllib.error
    import urllib.request

    from tailrace.agent.metrics import MonitorServer

    append(env.log, [*sample_lines(50), "junk"])
    agent = env.agent()
    run_until_idle(agent, env.clock)
    server = MonitorServer("127.0.0.1:0", agent.status)
    server.start()
    try:
        metrics = urllib.request.urlopen(server.address + "/metrics").read().decode()
        status = json.loads(urllib.request.urlopen(server.address + "/api/status").read())
        try:
            urllib.request.urlopen(server.address + "/nope")
            raise AssertionError("expected a 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        server.stop()
    assert 'tailrace_agent_shipped_lines_total{source="tail.1",tag="apache.access"} 50' in metrics
    assert 'tailrace_agent_malformed_lines_total{source="tail.1",tag="apache.access"} 1' in metrics
    assert "# TYPE tailrace_agent_lag_bytes gauge" in metrics
    assert status["sources"][0]["malformed_reasons"] == {"pattern not matched": 1}


def test_star_tags_expand_to_the_path_and_unmatched_tags_go_to_the_error_sink(env: Env):
    a, b = sample_lines(3, seed=1), sample_lines(2, seed=2)
    (env.logs / "web").mkdir()
    (env.logs / "other").mkdir()
    append(env.logs / "web" / "access.log", a)
    append(env.logs / "other" / "access.log", b)
    pattern = f"apache.{str(env.logs).strip('/').replace('/', '.')}.web.**"
    cfg = env.config(
        source={"path": str(env.logs / "*" / "access.log"), "tag": "apache.*"}, match={"pattern": pattern}
    )
    run_until_idle(env.agent(cfg), env.clock)
    tag = "apache." + str(env.logs / "web" / "access.log").strip("/").replace("/", ".")
    assert env.shipped() == [reference_apache2(x, tag=tag) for x in a]
    errors = env.errors()
    assert len(errors) == 2
    assert all(e["reason"].startswith("no [[match]] pattern matches tag 'apache.") for e in errors)
    assert [e["line"] for e in errors] == b
