"""Fan-out of hub updates to the connected pages, one bounded queue each.

A page that cannot keep up (a stalled browser tab, a slow link) is disconnected rather than
buffered without limit; its EventSource reconnects by itself and starts again from a snapshot.
Everything runs on the worker's event loop, so subscribing right after taking a snapshot
cannot miss an update in between.
"""

from __future__ import annotations

import asyncio

from pipeline.dashboard.hub import Update

_CLOSED: list[Update] = []  # sentinel batch: the stream ends


class Subscription:
    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[list[Update]] = asyncio.Queue(maxsize=maxsize)
        self.closed = False

    def offer(self, updates: list[Update]) -> bool:
        """False if the subscriber is too far behind (it is closed then)."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(updates)
            return True
        except asyncio.QueueFull:
            self.close()
            return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # Make room for the sentinel: a closed subscriber's pending updates are of no use.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def next(self) -> list[Update] | None:
        """The next batch of updates; None once closed."""
        batch = await self._queue.get()
        return None if batch is _CLOSED else batch


class Broadcaster:
    def __init__(self, queue_batches: int = 512) -> None:
        self.queue_batches = queue_batches
        self._subscribers: set[Subscription] = set()
        self.closed = False

    def subscribe(self) -> Subscription:
        subscription = Subscription(self.queue_batches)
        if self.closed:
            subscription.close()
        else:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, updates: list[Update]) -> None:
        if not updates:
            return
        for subscription in list(self._subscribers):
            if not subscription.offer(updates):
                self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every stream (worker shutdown: open streams would otherwise hold the web server's stop)."""
        self.closed = True
        for subscription in self._subscribers:
            subscription.close()
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
