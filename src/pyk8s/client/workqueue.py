"""A work queue for controllers, with client-go's guarantees (k8s.io/client-go/util/workqueue).

- A key is queued at most once: adding a key already waiting does nothing (the *dirty* set).
- A key is handed to one worker at a time: while a worker holds it (the *processing* set), adding it only
  marks it dirty; `done(key)` puts it back in the queue then, so the change is not lost and never
  processed concurrently.
- `add_after` delays an add; `add_rate_limited` delays it by the rate limiter (per-key exponential
  backoff and an overall token bucket); `forget` resets the key's backoff after a success.
- `shutdown()` refuses new keys; workers still receive the keys already queued, then `get()` raises
  `ShutDown`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from pyk8s.client.ratelimit import RateLimiter, default_controller_rate_limiter

__all__ = ["ShutDown", "WorkQueue"]

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue is shut down and empty: the worker should return."""


class WorkQueue(Generic[K]):
    def __init__(self, rate_limiter: RateLimiter | None = None, name: str = "") -> None:
        self.name = name
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._delayed: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    def __len__(self) -> int:
        """Keys waiting for a worker (not those being processed or delayed)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() requeues it
        self._queue.append(key)
        self._wake_one()

    async def get(self) -> K:
        """The next key, waiting for one; the caller must call `done(key)` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # A wake-up meant for this worker must not be lost with it.
                if fut.done() and not fut.cancelled():
                    self._wake_one()
                else:
                    self._discard_waiter(fut)
                raise
        return self._take()

    def get_nowait(self) -> K:
        """The next key if one is queued, else asyncio.QueueEmpty (ShutDown once shut down and empty)."""
        if not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            raise asyncio.QueueEmpty
        return self._take()

    def _take(self) -> K:
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        """The worker is finished with `key`; if it was added meanwhile it is queued again now."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds; an earlier pending add of the same key wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        self._delayed[key] = (ready_at, loop.call_at(ready_at, self._fire, key))

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _discard_waiter(self, fut: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(fut)
        except ValueError:
            pass
