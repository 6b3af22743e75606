"""A small base for controllers: event handlers enqueue keys, N workers reconcile them.

As Kubernetes' controllers: `reconcile(key)` reads what it needs from listers and is idempotent; raising
means "try again later" (a rate-limited requeue), returning a number of seconds asks to be called again
after that long (a RequeueAfter), returning None means done (the key's backoff is forgotten). The queue
never hands one key to two workers, so reconcile for one object never runs concurrently with itself.
An expected failure (a range that is full, a dependency not there yet) raises `RetryLater`: the same
rate-limited requeue, logged as one warning line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk8s.client.cache import DeletedFinalStateUnknown, object_key
from pyk8s.client.ratelimit import RateLimiter
from pyk8s.client.workqueue import ShutDown, WorkQueue
from pyk8s.util.tasks import cancel_and_wait

__all__ = ["Controller", "RetryLater"]

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Raised by reconcile: not possible now, try again with backoff; the message says why."""


class Controller:
    """Subclass and implement `reconcile`; connect informers with
    `informer.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)`."""

    name = "controller"
    # A key that failed this many times in a row is dropped (client-go controllers use 15); None: never.
    max_retries: int | None = None

    def __init__(self, *, workers: int = 1, rate_limiter: RateLimiter | None = None) -> None:
        self.workers = workers
        self.queue: WorkQueue[str] = WorkQueue(rate_limiter, name=self.name)

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    def enqueue(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self.queue.add(object_key(obj))

    async def run(self) -> None:
        """Run the workers until `shutdown()` (each finishes its key, the queued keys are still handed
        out) or until cancelled (a reconcile in flight is cancelled)."""
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name} worker {i}")
                 for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            await cancel_and_wait(tasks)

    def shutdown(self) -> None:
        self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        try:
            requeue_after = await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            expected = isinstance(e, RetryLater)
            retries = self.queue.num_requeues(key)
            if self.max_retries is not None and retries >= self.max_retries:
                log.error("%s: dropping %s after %d retries", self.name, key, retries, exc_info=not expected)
                self.queue.forget(key)
                return
            if expected:
                log.warning("%s: %s; requeued", self.name, e)
            else:
                log.exception("%s: reconciling %s failed; requeued", self.name, key)
            self.queue.add_rate_limited(key)
            return
        self.queue.forget(key)
        if requeue_after is not None:
            self.queue.add_after(key, requeue_after)
