"""The controller base (workers, requeue on error, requeue-after) and ControllerExpectations."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pyk8s.client.cache import DeletedFinalStateUnknown
from pyk8s.client.controller import Controller, RetryLater
from pyk8s.client.expectations import EXPECTATIONS_TTL, ControllerExpectations
from pyk8s.client.ratelimit import ItemExponentialRateLimiter
from pyk8s.util.clock import FakeClock
from tests.client.conftest import eventually


class Flaky(Controller):
    name = "flaky"

    def __init__(self) -> None:
        super().__init__(workers=3, rate_limiter=ItemExponentialRateLimiter(0.001, 0.01))
        self.calls: list[str] = []
        self.running: set[str] = set()
        self.overlap = False

    async def reconcile(self, key: str) -> float | None:
        if key in self.running:
            self.overlap = True
        self.running.add(key)
        try:
            self.calls.append(key)
            await asyncio.sleep(0.001)
            if key == "ns/fails-twice" and self.calls.count(key) <= 2:
                raise RuntimeError("not yet")
            if key == "ns/again" and self.calls.count(key) == 1:
                return 0.01
            return None
        finally:
            self.running.discard(key)


async def test_workers_reconcile_retry_and_requeue_after() -> None:
    c = Flaky()
    task = asyncio.create_task(c.run())
    c.enqueue({"metadata": {"namespace": "ns", "name": "ok"}})
    c.enqueue({"metadata": {"namespace": "ns", "name": "fails-twice"}})
    c.enqueue(DeletedFinalStateUnknown("ns/again", {}))
    for _ in range(20):
        c.enqueue({"metadata": {"namespace": "ns", "name": "ok"}})
        await asyncio.sleep(0)
    await eventually(lambda: c.calls.count("ns/fails-twice") == 3 and c.calls.count("ns/again") == 2,
                     what="retries and the requeue")
    assert not c.overlap
    assert c.queue.num_requeues("ns/fails-twice") == 0  # forgotten after the success
    c.shutdown()
    async with asyncio.timeout(5):
        await task


class Waiting(Controller):
    name = "waiting"

    def __init__(self) -> None:
        super().__init__(rate_limiter=ItemExponentialRateLimiter(0.001, 0.01))
        self.calls = 0

    async def reconcile(self, key: str) -> float | None:
        self.calls += 1
        if self.calls < 3:
            raise RetryLater(f"nothing free for {key} yet")
        return None


async def test_retry_later_requeues_with_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    c = Waiting()
    task = asyncio.create_task(c.run())
    with caplog.at_level(logging.WARNING, logger="pyk8s.client.controller"):
        c.enqueue({"metadata": {"name": "n1"}})
        await eventually(lambda: c.calls == 3, what="two retries")
    assert [r.getMessage() for r in caplog.records] == ["waiting: nothing free for n1 yet; requeued"] * 2
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)
    assert c.queue.num_requeues("n1") == 0
    c.shutdown()
    async with asyncio.timeout(5):
        await task


def test_expectations() -> None:
    clock = FakeClock()
    exp = ControllerExpectations(clock=clock)
    assert exp.satisfied("rs")  # nothing recorded
    exp.expect_creations("rs", 2)
    assert not exp.satisfied("rs")
    exp.creation_observed("rs")
    assert not exp.satisfied("rs") and exp.get("rs") == (1, 0)
    exp.creation_observed("rs")
    assert exp.satisfied("rs")

    exp.expect_deletions("rs", 1)
    assert not exp.satisfied("rs")
    exp.deletion_observed("rs")
    assert exp.satisfied("rs")

    exp.expect_creations("rs", 5)
    clock.advance(EXPECTATIONS_TTL + 1)
    assert exp.satisfied("rs")  # expired: a lost event must not wedge the controller
    exp.delete_expectations("rs")
    assert exp.get("rs") is None
