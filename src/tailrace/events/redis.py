"""The event bus on a Redis stream: a durable, id-ordered history every process can follow.

Each event is one stream entry whose id is `<event id>-0`, so a position is an entry id and the
stream's order is the outbox's. Publishing runs a Lua script that compares the event id with
the last one published (kept in `<stream>:last`) and appends only newer ones, trimming the stream
to about `maxlen` entries: a relay that re-publishes after a crash adds nothing twice.

A subscription reads with XREAD BLOCK on its own connection and thread; when that connection
breaks it reconnects and continues from the last entry it delivered, so it neither skips nor
repeats an event. A consumer whose position was trimmed away continues at the oldest entry kept.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tailrace.errors import ConfigError
from tailrace.events.abc import Batch, Callback, EventBus, Subscription
from tailrace.events.model import Delivered, Event, EventError, UnknownEvent, from_dict, to_dict

log = logging.getLogger("tailrace.events")

_POSITION = re.compile(r"\A(\d+)-(\d+)\Z")
_CHUNK = 200  # events per script call: keeps each call short for the Redis server

# KEYS: stream, last-id key. ARGV: maxlen, then (event id, type, data) per event, in id order.
# Returns how many were appended.
_PUBLISH = """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then
  local top_id = tonumber(string.match(top[1][1], '^(%d+)'))
  if top_id > last then last = top_id end
end
local added = 0
for i = 2, #ARGV, 3 do
  local id = tonumber(ARGV[i])
  if id > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 't', ARGV[i + 1], 'e', ARGV[i + 2])
    last = id
    added = added + 1
  end
end
if added > 0 then redis.call('SET', KEYS[2], last) end
return added
"""


def _event_id(position: str) -> int:
    m = _POSITION.match(position)
    if m is None:
        raise EventError(
            f"not a position of the Redis event bus: {position!r} (expected an entry id like '42-0')"
        )
    return int(m.group(1))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _delivered(entry_id: Any, fields: dict[Any, Any]) -> Delivered:
    position = _text(entry_id)
    try:
        event = from_dict(orjson.loads(fields[b"e"]))
    except (KeyError, orjson.JSONDecodeError, EventError) as exc:
        # Something else wrote to the stream: keep the position moving, hand on what it was.
        log.warning("event bus entry %s is not an event: %s", position, exc)
        event = UnknownEvent(at=datetime.now(UTC), type_name=_text(fields.get(b"t", b"?")))
    return Delivered(event_id=_event_id(position), position=position, event=event)


class RedisUnavailable(EventError):
    """The Redis server of the event bus could not be reached or refused a command."""


@contextmanager
def _talking_to(bus: RedisEventBus) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise RedisUnavailable(f"event bus on Redis stream {bus.stream!r}: {exc}") from None


class RedisEventBus(EventBus):
    def __init__(
        self,
        url: str,
        *,
        stream: str = "tailrace:events",
        maxlen: int = 100_000,
        block_ms: int = 1000,
        batch: int = 500,
    ) -> None:
        if maxlen < 1:
            raise EventError(f"the Redis stream's maxlen must be at least 1; found {maxlen}")
        self.url = url
        self.stream = stream
        self.last_key = f"{stream}:last"
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.batch = batch
        try:
            self.client = redis.Redis.from_url(url)
        except ValueError as exc:
            raise ConfigError(f"redis_url: {exc}") from None
        self._publish = self.client.register_script(_PUBLISH)
        self._subs: list[RedisSubscription] = []
        self._lock = threading.Lock()

    def publish(self, event_id: int, event: Event) -> None:
        self.publish_many([(event_id, event)])

    def publish_many(self, items: Sequence[tuple[int, Event]]) -> None:
        for start in range(0, len(items), _CHUNK):
            args: list[Any] = [self.maxlen]
            for event_id, event in items[start : start + _CHUNK]:
                args += [event_id, event.TYPE, orjson.dumps(to_dict(event))]
            with _talking_to(self):
                self._publish(keys=[self.stream, self.last_key], args=args)

    def last_event_id(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.last_key)
        pipe.xrevrange(self.stream, count=1)
        with _talking_to(self):
            last, top = pipe.execute()
        found = int(last or 0)
        if top:
            found = max(found, _event_id(_text(top[0][0])))
        return found

    def position_of(self, event_id: int) -> str:
        return f"{event_id}-0" if event_id > 0 else ""

    def read(self, after: str = "", *, limit: int = 1000) -> Batch:
        start = _event_id(after) if after else 0
        pipe = self.client.pipeline(transaction=False)
        pipe.xread({self.stream: after or "0-0"}, count=limit)
        pipe.xrange(self.stream, count=1)
        with _talking_to(self):
            found, first = pipe.execute()  # XREAD's [[stream, entries]] (or empty), XRANGE's first entry
        events = [_delivered(i, f) for i, f in found[0][1]] if found else []
        # A position comes from an entry this stream held; when the oldest entry kept is not the
        # one right after it, the ones between were trimmed away (event ids are consecutive but
        # for transactions that failed to commit).
        oldest = _event_id(_text(first[0][0])) if first else None
        trimmed = bool(after) and oldest is not None and start < oldest - 1
        return Batch(events=events, position=events[-1].position if events else after, trimmed=trimmed)

    def subscribe(self, callback: Callback, *, after: str = "") -> Subscription:
        if after:
            _event_id(after)
        sub = RedisSubscription(self, callback, after)
        with self._lock:
            self._subs.append(sub)
        sub.thread.start()
        return sub

    def _forget(self, sub: RedisSubscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def close(self) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()
        self.client.close()


class RedisSubscription(Subscription):
    """One subscriber: its own connection (named `name` in CLIENT LIST) and thread."""

    def __init__(self, bus: RedisEventBus, callback: Callback, after: str) -> None:
        self.bus = bus
        self.callback = callback
        self.position = after or "0-0"
        self.name = f"tailrace-sub-{uuid.uuid4().hex[:12]}"
        self.reconnects = 0
        self._closed = threading.Event()
        # No retries inside redis-py: the loop below reconnects and resumes from its position.
        self.client = redis.Redis.from_url(
            bus.url,
            client_name=self.name,
            socket_timeout=bus.block_ms / 1000 + 10,
            retry=Retry(NoBackoff(), 0),
        )
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def _run(self) -> None:
        backoff = 0.1
        while not self._closed.is_set():
            try:
                found: Any = self.client.xread(
                    {self.bus.stream: self.position}, count=self.bus.batch, block=self.bus.block_ms
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._closed.is_set():
                    break
                self.reconnects += 1
                log.warning("event bus connection lost (%s); reconnecting from %s", exc, self.position)
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except redis.RedisError:
                log.exception("event bus read failed; retrying from %s", self.position)
                self._closed.wait(1.0)
                continue
            backoff = 0.1
            if not found:
                continue
            batch = [_delivered(i, f) for i, f in found[0][1]]
            try:
                self.callback(batch)
            except Exception:
                log.exception("event bus subscriber failed on events up to %s", batch[-1].position)
            self.position = batch[-1].position
        self.client.close()

    def close(self) -> None:
        self._closed.set()
        self.bus._forget(self)
        if threading.current_thread() is not self.thread and self.thread.is_alive():
            self.thread.join()
