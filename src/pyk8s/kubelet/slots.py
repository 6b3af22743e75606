"""Start slots: at most N runtime starts at once, handed out in the order the pods came, not the order
the steps asked.

A burst of pods asks for a slot twice per pod (its sandbox, then its containers). With a plain FIFO
semaphore the first pod's container start queues behind every later pod's sandbox, so all pods finish
together, late; ordered by the pod, the first pods run while later ones still wait, and the total work
is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

__all__ = ["StartSlots"]


class StartSlots:
    def __init__(self, slots: int) -> None:
        self._free = max(1, slots)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # (rank, arrival, future) heap
        self._arrival = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, f in self._waiters if not f.done())

    @contextlib.asynccontextmanager
    async def slot(self, rank: int) -> AsyncIterator[None]:
        """Hold a slot for the body; when none is free, lower `rank`s are served first (ties: in order
        of asking)."""
        if self._free > 0:  # then nobody waits: a released slot goes to a waiter before it is freed
            self._free -= 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (rank, next(self._arrival), future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # handed a slot while being cancelled: pass it on
                else:
                    future.cancel()  # skipped by _release
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            *_, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
