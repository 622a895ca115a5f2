"""The fan-out: one follower per console process, any number of open pages.

The follower's thread hands each batch to the event loop (one `call_soon_threadsafe` per batch);
the loop appends each event's pre-encoded frame to the small queue of every connection allowed
to see it (connections are grouped by owner, so an event costs a dict lookup plus one append per
receiving page). A page that does not keep up (its queue is full) is dropped: it gets what is
queued, then a `reconnect` message, and its browser reconnects with Last-Event-ID and is replayed
what it missed. Nothing holds a Redis connection per page.

Replay: the hub keeps the last `recent` frames and the last `history` alarms and broadcasts.
A connection registers its queue first and then takes the replay up to `head` (the last id fanned
out at that moment): live frames are all above `head`, replayed ones at or below it, so a page
gets each event once, in order, with no gap. A reconnect from further back than the ring reads
the store's outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from tailrace.console.live.follow import BusFollower, Follower, StoreFollower
from tailrace.console.live.wire import Frame, frame
from tailrace.events.abc import EventBus
from tailrace.events.model import Event
from tailrace.state.abc import StateStore

log = logging.getLogger("tailrace.console.live")


class Client:
    """One open page: its owner and a bounded queue of frames the loop has not sent yet."""

    __slots__ = ("dropped", "limit", "owner", "pending", "ping", "waiter")

    def __init__(self, owner: str | None, limit: int) -> None:
        self.owner = owner
        self.pending: deque[Frame] = deque()
        self.waiter: asyncio.Future[None] | None = None
        """What the page's stream awaits when it has nothing to send (a bare future: no timer or
        task per wait, which matters at a thousand pages per event)."""
        self.dropped = False
        self.ping = False
        self.limit = limit

    def offer(self, item: Frame) -> None:
        if self.dropped:
            return
        if len(self.pending) >= self.limit:
            self.dropped = True  # what is queued still goes out; then the page reconnects
        else:
            self.pending.append(item)
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until something is offered, the page is dropped, or a keepalive is due."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


@dataclass(frozen=True, kw_only=True)
class Replay:
    frames: list[Frame]
    head: int
    """Every visible event up to here is in `frames` (or, with `reset`, was too much to replay)."""
    reset: bool = False
    """More was missed than a replay sends: the page should reload what it shows."""


class LiveHub:
    def __init__(
        self,
        *,
        store: StateStore,
        bus: EventBus | None,
        recent: int = 2000,
        history: int = 100,
        client_queue: int = 1000,
        replay_limit: int = 2000,
        seed_window: int = 5000,
        follower: Follower | None = None,
        keepalive: float = 15.0,
    ) -> None:
        """`keepalive`: seconds between comments on idle streams (load balancers close silent
        connections; a write is also how a dead connection is noticed)."""
        self.store = store
        self.follower: Follower = follower or (BusFollower(bus) if bus is not None else StoreFollower(store))
        self.recent: deque[Frame] = deque(maxlen=recent)
        self.history: deque[Frame] = deque(maxlen=history)
        self.client_queue = client_queue
        self.replay_limit = replay_limit
        self.seed_window = seed_window
        self.keepalive = keepalive
        self.head = 0
        self.floor = 0
        """The ring holds every shown event with an id above this one."""
        self.delivered = 0
        """Frames handed to connections (for the benchmark)."""
        self._by_owner: dict[str | None, set[Client]] = {}
        self._everyone: set[Client] = set()
        self._started: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Seed the history and start following (once; later calls wait for the first)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._start())
        started = self._started
        try:
            await asyncio.shield(started)
        except Exception:
            if started.done() and self._started is started:
                self._started = None  # the store or the bus was away: the next page retries
            raise

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        head = await asyncio.to_thread(self.follower.head)
        seeded = await asyncio.to_thread(self._read, max(0, head - self.seed_window), head, self.seed_window)
        self.floor = max(0, head - self.seed_window)
        self._take(seeded)
        self.head = head
        self.follower.start(head, self._from_thread)
        self._pinger = self._loop.create_task(self._ping())

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive)
            for clients in self._by_owner.values():
                for c in clients:
                    c.ping = True
                    c.wake()

    def close(self) -> None:
        self.follower.close()
        if self._pinger is not None:
            self._pinger.cancel()
        for clients in self._by_owner.values():
            for c in clients:
                c.dropped = True
                c.wake()

    def _read(self, after: int, upto: int, limit: int) -> list[tuple[int, Frame | None]]:
        """Frames of the outbox's events in (after, upto], at most `limit` events read."""
        found: list[tuple[int, Frame | None]] = []
        while len(found) < limit:
            records = self.store.events_after(after, limit=min(500, limit - len(found)))
            records = [r for r in records if r.id <= upto]
            if not records:
                break
            found += [(r.id, frame(r.id, r.event)) for r in records]
            after = records[-1].id
        return found

    # --- in: the follower's thread, then the loop ------------------------------------------------

    def _from_thread(self, items: Sequence[tuple[int, Event]]) -> None:
        frames = [(event_id, frame(event_id, event)) for event_id, event in items]  # encode off the loop
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._fanout, frames)

    def _take(self, items: Sequence[tuple[int, Frame | None]]) -> list[Frame]:
        new: list[Frame] = []
        for event_id, item in items:
            if event_id <= self.head:
                continue  # the bus or the store handed it on again
            self.head = event_id
            if item is None:
                continue
            if len(self.recent) == self.recent.maxlen:
                self.floor = self.recent[0].event_id
            self.recent.append(item)
            if item.kept:
                self.history.append(item)
            new.append(item)
        return new

    def _fanout(self, items: Sequence[tuple[int, Frame | None]]) -> None:
        for item in self._take(items):
            targets = self._by_owner.get(None, ())
            for c in targets:
                c.offer(item)
            n = len(targets)
            if item.everyone:
                for owner, clients in self._by_owner.items():
                    if owner is not None:
                        for c in clients:
                            c.offer(item)
                        n += len(clients)
            elif item.owner is not None:
                for c in self._by_owner.get(item.owner, ()):
                    c.offer(item)
                    n += 1
            self.delivered += n

    # --- out: connections --------------------------------------------------------------------

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._by_owner.values())

    async def attach(self, owner: str | None, last_id: int | None) -> tuple[Client, Replay]:
        """Register a page, then compute what it missed (see the module doc for why in this order)."""
        await self.start()
        client = Client(owner, self.client_queue)
        self._by_owner.setdefault(owner, set()).add(client)
        head = self.head
        try:
            replay = await self._replay(owner, last_id, head)
        except BaseException:
            self.detach(client)
            raise
        return client, replay

    def detach(self, client: Client) -> None:
        clients = self._by_owner.get(client.owner)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._by_owner[client.owner]

    def recent_history(self, owner: str | None, limit: int) -> list[Frame]:
        """The last alarms and broadcasts the owner may see, oldest first."""
        return [f for f in self.history if f.visible_to(owner)][-limit:] if limit > 0 else []

    async def _replay(self, owner: str | None, last_id: int | None, head: int) -> Replay:
        if last_id is None:  # a new page: the recent alarms and broadcasts
            return Replay(frames=self.recent_history(owner, self.history.maxlen or 0), head=head)
        if last_id >= head:
            return Replay(frames=[], head=head)
        if last_id >= self.floor:
            frames = [f for f in self.recent if last_id < f.event_id <= head and f.visible_to(owner)]
            return Replay(frames=frames, head=head)
        # Further back than the ring: the outbox, bounded (a page away for hours reloads instead).
        scan = self.replay_limit * 25
        read = await asyncio.to_thread(self._read, last_id, head, scan)
        frames = [f for _, f in read if f is not None and f.visible_to(owner)]
        complete = len(read) < scan or (bool(read) and read[-1][0] >= head)
        if len(frames) > self.replay_limit or not complete:
            return Replay(frames=self.recent_history(owner, self.history.maxlen or 0), head=head, reset=True)
        return Replay(frames=frames, head=head)
