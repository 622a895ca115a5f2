"""Following files: partial lines, rotation by rename (also while down), copytruncate, globs,
deleted files, over-long lines, and the fluentd-compatible position file."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tailrace.agent.tail import PositionFile

from .conftest import Env, append, multiset, reference_apache2, run_until_idle, sample_lines


def expected(lines: list[str]) -> list[str]:
    return [reference_apache2(line) for line in lines]  # type: ignore[misc]


def test_partial_last_line_waits_for_its_newline(env: Env):
    lines = sample_lines(3)
    agent = env.agent()
    append(env.log, lines[:2])
    with env.log.open("a") as fh:
        fh.write(lines[2][:40])
    agent.step()
    assert agent.sources[0].stats.lines_read == 2
    with env.log.open("a") as fh:
        fh.write(lines[2][40:] + "\n")
    run_until_idle(agent, env.clock)
    assert env.shipped() == expected(lines)


def test_rotation_by_rename_drains_the_old_file_then_reads_the_new_one(env: Env):
    lines = sample_lines(600)
    agent = env.agent(env.config(source={"read_block_size": "4k"}))
    append(env.log, lines[:200])
    agent.step()  # reads only part of the file (4 KiB per batch)
    os.rename(env.log, env.logs / "access_log.1")
    append(env.logs / "access_log.1", lines[200:300])  # the server still writes to the old inode
    append(env.log, lines[300:600])
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert len(env.shipped()) == 600
    env.clock.advance(10)
    agent.step()
    assert len(agent.sources[0].tailer.watchers) == 1  # the old file was dropped after rotate_wait
    events = [e["kind"] for e in agent.status()["sources"][0]["events"]]
    assert "rotated" in events


def test_rotation_while_the_agent_is_down_is_found_by_inode(env: Env):
    lines = sample_lines(300)
    append(env.log, lines[:100])
    agent = env.agent()
    run_until_idle(agent, env.clock)
    agent.shutdown(0)
    append(env.log, lines[100:150])  # written while down, then rotated away
    os.rename(env.log, env.logs / "access_log.1")
    append(env.log, lines[150:300])
    agent = env.agent()
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert len(env.shipped()) == 300


def test_a_file_created_and_rotated_away_while_the_agent_is_down_is_read(env: Env):
    """Two rotations in one outage: the middle file was never at the path while an agent ran."""
    lines, older = sample_lines(401)[:400], sample_lines(401)[400:]
    append(env.log, lines[:100])
    agent = env.agent()
    run_until_idle(agent, env.clock)
    agent.shutdown(0)
    old = env.logs / "access_log.1"
    append(old, older)  # a rotated file from before the agent's time, never known: left alone
    os.utime(old, (1_000_000, 1_000_000))
    (env.logs / "access_log.0.gz").write_bytes(b"\x1f\x8b compressed copy")  # never read
    time.sleep(0.02)  # file times are coarse: the position file was written before what follows
    append(env.log, lines[100:150])
    os.rename(env.log, env.logs / "access_log-a")
    append(env.log, lines[150:250])  # the unseen file
    os.rename(env.log, env.logs / "access_log-b")
    append(env.log, lines[250:400])
    # As if the agent had committed other lines after the unseen file's last write (it was
    # killed before it polled the path): the file still counts, being newer than access_log-a.
    pos = agent.sources[0].posfile.path
    os.utime(pos, (time.time() + 60, time.time() + 60))
    agent = env.agent()
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert len(env.shipped()) == 400
    events = [e["message"] for e in agent.status()["sources"][0]["events"]]
    assert any("access_log-b was written at" in m and "unseen" in m for m in events), events


def test_two_rotations_between_polls_lose_nothing_and_dropped_files_are_not_read_again(env: Env):
    lines = sample_lines(600)
    agent = env.agent()
    append(env.log, lines[:100])
    run_until_idle(agent, env.clock)
    time.sleep(0.02)
    os.rename(env.log, env.logs / "access_log.1")
    append(env.log, lines[100:200])  # at the path for less than a poll
    os.rename(env.log, env.logs / "access_log.2")
    append(env.log, lines[200:300])
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines[:300]))
    env.clock.advance(10)  # rotate_wait: the drained rotated files are dropped
    agent.step()
    assert len(agent.sources[0].tailer.watchers) == 1
    time.sleep(0.02)
    os.rename(env.log, env.logs / "access_log.3")
    append(env.log, lines[300:600])
    run_until_idle(agent, env.clock)
    assert len(env.shipped()) == 600  # access_log.1 and .2 were not read again
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_restart_resumes_at_the_committed_position(env: Env):
    lines = sample_lines(100)
    append(env.log, lines[:60])
    agent = env.agent()
    run_until_idle(agent, env.clock)
    agent.shutdown(0)
    append(env.log, lines[60:])
    agent = env.agent()
    run_until_idle(agent, env.clock)
    assert env.shipped().count(expected(lines[:1])[0]) == 1
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_copytruncate_with_the_copy_present_loses_nothing(env: Env):
    lines = sample_lines(300)
    agent = env.agent()
    append(env.log, lines[:100])
    agent.step()
    append(env.log, lines[100:150])  # written after the agent's last read
    # logrotate copytruncate: copy, then truncate in place (same inode)
    (env.logs / "access_log.1").write_bytes(env.log.read_bytes())
    os.truncate(env.log, 0)
    append(env.log, lines[150:300])
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert len(env.shipped()) == 300


def test_copytruncate_without_a_copy_loses_only_the_lines_after_the_last_read(env: Env):
    lines = sample_lines(300)
    agent = env.agent()
    append(env.log, lines[:100])
    agent.step()
    append(env.log, lines[100:150])  # the documented window: after the last read, before the truncate
    os.truncate(env.log, 0)  # no copy in the directory (e.g. compressed at once)
    append(env.log, lines[150:300])
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines[:100] + lines[150:]))
    events = agent.status()["sources"][0]["events"]
    assert any(e["kind"] == "truncated" and "lost" in e["message"] for e in events)


def test_truncation_noticed_even_when_the_file_grew_past_the_old_position(env: Env):
    lines = sample_lines(400)
    agent = env.agent()
    append(env.log, lines[:50])
    agent.step()
    os.truncate(env.log, 0)
    append(env.log, lines[50:400])  # larger than before: only the bytes before our position tell
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_glob_reads_several_files_and_new_ones_from_their_head(env: Env):
    a, b, c = sample_lines(50, seed=1), sample_lines(50, seed=2), sample_lines(50, seed=3)
    append(env.logs / "a.log", a)
    append(env.logs / "b.log", b)
    cfg = env.config(
        source={"path": str(env.logs / "*.log"), "read_from_head": False, "refresh_interval": "1s"}
    )
    agent = env.agent(cfg)
    agent.step()  # existing files without a position: from their end (read_from_head false)
    append(env.logs / "a.log", a[:10])
    append(env.logs / "c.log", c)  # appears later: read from its head
    env.clock.advance(2)
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(a[:10] + c))


def test_glob_matching_rotated_files_does_not_read_them_twice(env: Env):
    lines = sample_lines(200)
    cfg = env.config(source={"path": str(env.logs / "access_log*"), "refresh_interval": "1s"})
    agent = env.agent(cfg)
    append(env.log, lines[:100])
    agent.step()
    os.rename(env.log, env.logs / "access_log.1")
    append(env.log, lines[100:])
    env.clock.advance(2)
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))


def test_file_deleted_while_read_is_drained_from_the_open_descriptor(env: Env):
    lines = sample_lines(500)
    agent = env.agent(env.config(source={"read_block_size": "4k"}))
    append(env.log, lines)
    agent.step()
    env.log.unlink()
    run_until_idle(agent, env.clock)
    assert multiset(env.shipped()) == multiset(expected(lines))
    assert any(e["kind"] == "deleted" for e in agent.status()["sources"][0]["events"])


def test_over_long_line_goes_to_the_error_sink_and_neighbours_are_kept(env: Env):
    lines = sample_lines(20)
    agent = env.agent(env.config(source={"max_line_size": "64k", "read_block_size": "16k"}))
    append(env.log, lines[:10])
    append(env.log, ["X" * 200_000])
    append(env.log, lines[10:])
    run_until_idle(agent, env.clock)
    assert env.shipped() == expected(lines)
    (err,) = env.errors()
    assert err["reason"] == "line longer than max_line_size"
    assert err["length"] == 200_000
    assert err["offset"] == sum(len(x) + 1 for x in lines[:10])


def test_position_file_is_fluentd_compatible(env: Env):
    append(env.log, sample_lines(10))
    agent = env.agent()
    run_until_idle(agent, env.clock)
    text = (env.state / "access.pos").read_text()
    fluentd = re.compile(r"^([^\t]+)\t([0-9a-fA-F]+)\t([0-9a-fA-F]+)")  # in_tail's POSITION_FILE_ENTRY_REGEX
    entries = [m.groups() for line in text.splitlines() if (m := fluentd.match(line))]
    assert entries == [(str(env.log), f"{env.log.stat().st_size:016x}", f"{env.log.stat().st_ino:016x}")]
    seq, loaded = PositionFile(env.state / "access.pos").load()
    assert seq is not None and seq > 0
    assert loaded[0].offset == env.log.stat().st_size


def test_a_fluentd_position_file_is_picked_up(env: Env):
    lines = sample_lines(20)
    append(env.log, lines)
    done = sum(len(x) + 1 for x in lines[:5])
    env.state.mkdir()
    (env.state / "access.pos").write_text(f"{env.log}\t{done:016x}\t{env.log.stat().st_ino:016x}\n")
    agent = env.agent()
    run_until_idle(agent, env.clock)
    assert env.shipped() == expected(lines[5:])


def test_read_from_head_false_starts_at_the_end(env: Env, tmp_path: Path):
    lines = sample_lines(20)
    append(env.log, lines[:10])
    agent = env.agent(env.config(source={"read_from_head": False}))
    agent.step()
    append(env.log, lines[10:])
    run_until_idle(agent, env.clock)
    assert env.shipped() == expected(lines[10:])
