"""The fan-out hub without a browser: owner filtering, replay and de-duplication, slow pages, one
bus subscription per process. Real store (SQLite) and real buses (in-process; Redis when up)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from livekit import REDIS_URL, alarm, broadcast, commit

from tailrace.clock import SystemClock
from tailrace.console.live.hub import Client, LiveHub
from tailrace.console.live.routes import _frames
from tailrace.console.live.wire import MAX_FIELD, frame
from tailrace.events.memory import MemoryEventBus
from tailrace.events.model import Event, InstanceStatusChanged, MessagePublished
from tailrace.state import SqlStateStore, create_engine


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = SqlStateStore(create_engine(f"sqlite:///{tmp_path}/state.db"), clock=SystemClock())
    yield s
    s.close()
    s.engine.dispose()


def status(owner: str, new: str = "RUNNING") -> Event:
    return InstanceStatusChanged(at=datetime.now(UTC), owner=owner, object_id="@a_1", old="WAITING", new=new)


def parse(chunk: bytes) -> list[dict[str, Any]]:
    """SSE messages of a chunk: [{event, id, data}] (comments skipped)."""
    found = []
    for block in chunk.decode().split("\n\n"):
        msg: dict[str, Any] = {"event": "message"}
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key in ("event", "id"):
                msg[key] = value
            elif key == "data":
                msg["data"] = orjson.loads(value)
        if "data" in msg:
            found.append(msg)
    return found


async def drain(gen: AsyncIterator[bytes], count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Read SSE messages of the plain `message` kind until `count` arrived."""
    got: list[dict[str, Any]] = []
    while len([m for m in got if m["event"] == "message"]) < count:
        got += parse(await asyncio.wait_for(gen.__anext__(), timeout))
    return got


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def events_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["data"] for m in messages if m["event"] == "message"]


def test_each_owner_sees_its_events_operators_all_broadcasts_everyone(sqlite_store):
    bus = MemoryEventBus()

    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=bus)
        clients: dict[str | None, Client] = {}
        for owner in ("alice", "bob", None):
            clients[owner], _ = await hub.attach(owner, 0)
        bus.publish_many(
            [
                (1, alarm("a1", owner="alice")),
                (2, status("bob")),
                (3, broadcast("to all", owner=None)),
                (4, broadcast("alice only", owner="alice")),
            ]
        )
        await until(lambda: len(clients[None].pending) == 4)
        seen = {o: [f.event_id for f in c.pending] for o, c in clients.items()}
        assert seen == {"alice": [1, 3, 4], "bob": [2, 3], None: [1, 2, 3, 4]}
        assert hub.delivered == 9
        hub.close()

    asyncio.run(main())
    bus.close()


def test_replay_from_the_ring_then_live_each_event_once_in_order(sqlite_store):
    bus = MemoryEventBus()

    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=bus)
        await hub.start()
        bus.publish_many([(i, alarm(f"a{i}")) for i in range(1, 6)])
        await until(lambda: hub.head == 5)
        client, replay = await hub.attach("alice", 2)  # the page saw up to event 2
        assert [f.event_id for f in replay.frames] == [3, 4, 5] and replay.head == 5
        gen = _frames(hub, client, replay, {"viewer": "t"})
        # The follower hands some events on again (a bus reconnect): the page must not see them twice.
        hub._from_thread([(4, alarm("a4")), (5, alarm("a5")), (6, alarm("a6"))])
        bus.publish_many([(6, alarm("a6")), (7, alarm("a7"))])
        messages = await drain(gen, 5)
        assert [e["id"] for e in events_of(messages)] == [3, 4, 5, 6, 7]
        assert [m["event"] for m in messages][:1] == ["hello"]
        (sync,) = [m for m in messages if m["event"] == "sync"]
        assert sync["id"] == "5"  # the page's Last-Event-ID moves to the replay's head
        await gen.aclose()
        assert hub.connections == 0  # a closed stream leaves the hub
        hub.close()

    asyncio.run(main())
    bus.close()


def test_replay_from_further_back_than_the_ring_reads_the_outbox(sqlite_store):
    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=None, recent=3, seed_window=3)
        commit(sqlite_store, *[alarm(f"old{i}") for i in range(6)], status("bob"))
        await hub.start()  # follows the store itself (no bus)
        commit(sqlite_store, alarm("new"))
        await until(lambda: hub.head == 8)
        assert hub.floor > 2  # the ring no longer holds event 3
        _, replay = await hub.attach("alice", 2)
        assert [f.data["alarm_name"] for f in replay.frames] == ["old2", "old3", "old4", "old5", "new"]
        assert not replay.reset
        hub.close()

    asyncio.run(main())


def test_a_page_that_missed_more_than_a_replay_sends_is_told_to_reset(sqlite_store):
    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=None, recent=2, seed_window=2, replay_limit=3)
        commit(sqlite_store, broadcast("kept"), *[alarm(f"a{i}") for i in range(8)])
        await hub.start()
        _, replay = await hub.attach("alice", 1)
        assert replay.reset
        assert [f.event_id for f in replay.frames] == [8, 9]  # the recent alarms, as for a new page
        hub.close()

    asyncio.run(main())


def test_a_new_page_gets_recent_alarms_and_broadcasts_only(sqlite_store):
    async def main() -> None:
        commit(
            sqlite_store,
            status("alice"),
            alarm("x"),
            broadcast("hi"),
            alarm("y", new="OK"),
            alarm("b", owner="bob"),
        )
        hub = LiveHub(store=sqlite_store, bus=None)
        _, replay = await hub.attach("alice", None)
        assert [(f.data["type"], f.event_id) for f in replay.frames] == [
            ("alarm.state", 2),
            ("operator.broadcast", 3),
            ("alarm.state", 4),
        ]
        assert [f.data["alarm"] for f in replay.frames] == [True, False, False]
        assert replay.head == 5
        hub.close()

    asyncio.run(main())


def test_a_slow_page_is_dropped_then_told_to_reconnect_and_loses_nothing(sqlite_store):
    bus = MemoryEventBus()

    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=bus, client_queue=3)
        slow, replay = await hub.attach("alice", 0)
        fast, _ = await hub.attach("alice", 0)
        bus.publish_many([(i, alarm(f"a{i}")) for i in range(1, 9)])
        await until(lambda: hub.head == 8)
        assert slow.dropped and len(slow.pending) == 3
        fast.pending.clear()  # (nobody reads `fast`: it was dropped too; only `slow` is followed)
        messages: list[dict[str, Any]] = []
        async for chunk in _frames(hub, slow, replay, {}):
            messages += parse(chunk)
        assert [e["id"] for e in events_of(messages)] == [1, 2, 3]
        assert messages[-1]["event"] == "reconnect"
        # The browser reconnects from the last id it got, and the replay has the rest.
        _, again = await hub.attach("alice", 3)
        assert [f.event_id for f in again.frames] == [4, 5, 6, 7, 8]
        hub.close()

    asyncio.run(main())
    bus.close()


def test_many_pages_share_one_bus_subscription(sqlite_store):
    bus = MemoryEventBus()

    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=bus)
        clients = [(await hub.attach("alice", 0))[0] for _ in range(50)]
        assert len(bus._subs) == 1
        bus.publish(1, alarm("one"))
        await until(lambda: all(c.pending for c in clients))
        assert {c.pending[0].sse for c in clients} == {clients[0].pending[0].sse}  # encoded once
        hub.close()

    asyncio.run(main())
    bus.close()


@pytest.mark.redis
def test_one_redis_connection_per_console_process_not_per_page(sqlite_store):
    import redis

    from tailrace.events.redis import RedisEventBus

    stream = f"tailrace:test:live:{uuid.uuid4().hex}"
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({exc})")
    bus = RedisEventBus(REDIS_URL, stream=stream, block_ms=200)

    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=bus)
        clients = [(await hub.attach(None, 0))[0] for _ in range(40)]
        bus.publish(1, alarm("via redis"))
        await until(lambda: all(c.pending for c in clients))
        names = [c.get("name", "") for c in bus.client.client_list()]
        (sub,) = bus._subs
        assert names.count(sub.name) == 1 and len(bus._subs) == 1
        hub.close()

    try:
        asyncio.run(main())
    finally:
        bus.client.delete(stream, f"{stream}:last")
        bus.close()


def test_frames_cut_long_strings_and_keep_sse_data_on_one_line():
    event = MessagePublished(
        at=datetime.now(UTC),
        owner="alice",
        topic_arn="arn",
        message_id="m",
        message="x\n\ndata: evil\n" * 5000,
    )
    f = frame(7, event)
    assert f is not None
    assert len(f.data["message"]) == MAX_FIELD + 1
    assert f.sse.count(b"\n\n") == 1 and f.sse.endswith(b"\n\n")
    assert parse(f.sse)[0]["id"] == "7"


def test_idle_streams_get_keepalive_comments(sqlite_store):
    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=None, keepalive=0.05)
        client, replay = await hub.attach("alice", None)
        gen = _frames(hub, client, replay, {})
        first = await asyncio.wait_for(gen.__anext__(), 5)
        assert b"event: hello" in first and b"event: sync" in first
        assert await asyncio.wait_for(gen.__anext__(), 5) == b": keepalive\n\n"
        await gen.aclose()
        hub.close()

    asyncio.run(main())


def test_a_hub_whose_store_was_away_at_start_retries_on_the_next_page(sqlite_store):
    class Flaky:
        """A follower whose first `head()` fails, as a database that is not up yet (unit-test stub)."""

        def __init__(self) -> None:
            self.calls = 0
            self.started: list[int] = []

        def head(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("database is starting up")
            return 0

        def start(self, after: int, sink: Any) -> None:
            self.started.append(after)

        def close(self) -> None:
            pass

    async def main() -> None:
        follower = Flaky()
        hub = LiveHub(store=sqlite_store, bus=None, follower=follower)
        with pytest.raises(ConnectionError):
            await hub.attach("alice", None)
        assert hub.connections == 0
        _, replay = await hub.attach("alice", None)
        assert follower.started == [0] and replay.head == 0 and hub.connections == 1
        hub.close()

    asyncio.run(main())


def test_a_browser_gone_before_the_first_byte_leaves_the_hub(sqlite_store):
    from tailrace.console.live.routes import _Stream

    async def main() -> None:
        hub = LiveHub(store=sqlite_store, bus=None)
        client, replay = await hub.attach("alice", None)

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            raise OSError("connection reset by peer")

        scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
        with pytest.raises(Exception):  # noqa: B017  (Starlette's ClientDisconnect)
            await _Stream(hub, client, _frames(hub, client, replay, {}))(scope, receive, send)
        assert hub.connections == 0
        hub.close()

    asyncio.run(main())
