"""The work queue's guarantees: one key per worker at a time, dirty requeue, delays, rate limits, shutdown."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyk8s.client.ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)
from pyk8s.client.workqueue import ShutDown, WorkQueue
from pyk8s.util.clock import FakeClock
from tests.client.conftest import eventually


async def test_a_key_is_queued_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_a_key_added_while_processing_waits_for_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # dirty, not handed out while a worker holds it
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not second.done()
    q.done("a")
    async with asyncio.timeout(1):
        assert await second == "a"
    q.done("a")
    assert len(q) == 0  # the two adds while processing were one requeue


async def test_done_without_changes_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_workers_never_share_a_key() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    processed: list[int] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            assert key not in active, f"key {key} handed to two workers"
            active.add(key)
            await asyncio.sleep(0.001)
            q.add(key % 3)  # keep dirtying keys that others may hold
            active.discard(key)
            processed.append(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(5)]
    for i in range(30):
        q.add(i % 6)
        await asyncio.sleep(0)
    await eventually(lambda: len(processed) >= 30, what="work done")
    q.shutdown()
    async with asyncio.timeout(5):
        await asyncio.gather(*workers)


async def test_shutdown_hands_out_queued_keys_then_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")
    q.add("b")
    assert await waiter == "a"
    q.shutdown()
    q.add("c")  # refused
    assert await q.get() == "b"
    with pytest.raises(ShutDown):
        await q.get()
    idle = asyncio.create_task(q.get())
    with pytest.raises(ShutDown):
        await idle


async def test_shutdown_wakes_idle_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    waiters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ShutDown) for r in results)


async def test_a_cancelled_getter_does_not_swallow_a_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")  # wakes `first`
    first.cancel()
    async with asyncio.timeout(1):
        assert await second == "a"


async def test_add_after_delays_and_the_earliest_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 30)
    q.add_after("a", 0.05)
    q.add_after("a", 60)
    assert len(q) == 0
    async with asyncio.timeout(2):
        assert await q.get() == "a"
    q.done("a")
    await asyncio.sleep(0.1)
    assert len(q) == 0  # the later adds were merged into the earliest
    q.shutdown()


async def test_add_rate_limited_backs_off_per_key_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(ItemExponentialRateLimiter(0.01, 1.0))
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(4):
        start = loop.time()
        q.add_rate_limited("a")
        key = await q.get()
        delays.append(loop.time() - start)
        q.done(key)
    # 10, 20, 40, 80 ms: each wait at least its backoff
    for got, want in zip(delays, (0.01, 0.02, 0.04, 0.08), strict=True):
        assert got >= want * 0.9
    assert q.num_requeues("a") == 4
    q.forget("a")
    assert q.num_requeues("a") == 0


def test_item_exponential_limiter() -> None:
    lim = ItemExponentialRateLimiter(0.005, 1000.0)
    assert [lim.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert lim.when("b") == 0.005
    for _ in range(100):
        last = lim.when("a")
    assert last == 1000.0
    lim.forget("a")
    assert lim.when("a") == 0.005


def test_token_bucket_limits_the_overall_rate() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [bucket.when(i) for i in range(3)] == [0, 0, 0]
    assert bucket.when(3) == pytest.approx(0.1)
    assert bucket.when(4) == pytest.approx(0.2)
    clock.advance(10)
    assert bucket.when(5) == 0  # refilled, but never beyond the burst
    assert bucket.when(6) == 0
    assert bucket.when(7) == 0
    assert bucket.when(8) == pytest.approx(0.1)


def test_default_limiter_is_the_max_of_both() -> None:
    clock = FakeClock()
    lim = default_controller_rate_limiter(clock)
    assert isinstance(lim, MaxOfRateLimiter)
    assert lim.when("a") == 0.005
    # After the burst of 100 the bucket dominates the small per-item delays.
    for i in range(99):
        lim.when(i)
    assert lim.when("b") == pytest.approx(0.1)


# One step of a random schedule: add a key, or let worker w take a key or finish its key.
_step = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 4)),
    st.tuples(st.just("get"), st.integers(0, 2)),
    st.tuples(st.just("done"), st.integers(0, 2)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=60))
def test_queue_invariants_under_random_schedules(steps: list[tuple[str, int]]) -> None:
    """Against a model: no key is held by two workers; a key added while held is delivered again after
    done; a key is never queued twice; every added key is eventually delivered."""

    async def run() -> None:
        q: WorkQueue[int] = WorkQueue()
        held: dict[int, int] = {}  # worker → key
        pending: set[int] = set()  # keys added since they were last handed out
        for op, n in steps:
            if op == "add":
                q.add(n)
                pending.add(n)
            elif op == "get" and n not in held and len(q):
                key = q.get_nowait()
                assert key not in held.values()
                assert key in pending
                pending.discard(key)
                held[n] = key
            elif op == "done" and n in held:
                q.done(held.pop(n))
            assert len(q) == len(pending - set(held.values()))
        for key in list(held.values()):
            q.done(key)
        delivered = set()
        while len(q):
            key = q.get_nowait()
            delivered.add(key)
            q.done(key)
        assert delivered == pending

    asyncio.run(run())
