"""StartSlots: a bounded number of holders, waiters served by rank, cancellation never loses a slot."""

from __future__ import annotations

import asyncio

from pyk8s.kubelet.slots import StartSlots


async def test_waiters_are_served_by_rank_not_by_arrival() -> None:
    slots = StartSlots(1)
    order: list[int] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.slot(0):
            await release.wait()

    async def step(rank: int) -> None:
        async with slots.slot(rank):
            order.append(rank)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(step(r)) for r in (5, 3, 9, 1, 3)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert slots.waiting == 5 and order == []
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == [1, 3, 3, 5, 9]


async def test_at_most_n_hold_a_slot() -> None:
    slots = StartSlots(2)
    holding = peak = 0

    async def step(rank: int) -> None:
        nonlocal holding, peak
        async with slots.slot(rank):
            holding += 1
            peak = max(peak, holding)
            await asyncio.sleep(0)
            holding -= 1

    await asyncio.gather(*(step(r % 4) for r in range(20)))
    assert peak == 2


async def test_a_cancelled_waiter_does_not_keep_the_slot() -> None:
    slots = StartSlots(1)
    release = asyncio.Event()
    got: list[str] = []

    async def holder() -> None:
        async with slots.slot(0):
            await release.wait()

    async def step(name: str, rank: int) -> None:
        async with slots.slot(rank):
            got.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(step("cancelled", 1))
    later = asyncio.create_task(step("later", 2))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, later), 5)
    assert cancelled.cancelled() and got == ["later"]
    async with slots.slot(0):  # and the slot is free again afterwards
        pass


async def test_a_waiter_cancelled_after_being_handed_the_slot_passes_it_on() -> None:
    slots = StartSlots(1)
    got: list[str] = []

    async def step(name: str, rank: int) -> None:
        async with slots.slot(rank):
            got.append(name)

    held = slots.slot(0)
    await held.__aenter__()
    handed = asyncio.create_task(step("handed", 1))
    later = asyncio.create_task(step("later", 2))
    await asyncio.sleep(0)
    await held.__aexit__(None, None, None)  # hands the slot to `handed`, which has not run since
    handed.cancel()
    await asyncio.wait_for(later, 5)
    assert handed.cancelled() and got == ["later"]
