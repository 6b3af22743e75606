import asyncio

import pytest

from pyk8s.util.tasks import cancel_and_wait


async def _slow_to_stop(stopped: asyncio.Event) -> None:
    try:
        await asyncio.sleep(3600)
    finally:  # cleanup that takes a while, as informers and controllers do
        await asyncio.sleep(0.2)
        stopped.set()


async def test_the_callers_cancellation_is_not_swallowed_while_it_waits() -> None:
    stopped = asyncio.Event()
    child = asyncio.create_task(_slow_to_stop(stopped))
    await asyncio.sleep(0)

    async def owner() -> str:
        await cancel_and_wait([child])
        return "ran on"  # what a suppress(CancelledError) around `await child` would let happen

    parent = asyncio.create_task(owner())
    await asyncio.sleep(0.05)  # the parent now waits for the child's cleanup
    parent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(parent, 5)
    await asyncio.wait_for(stopped.wait(), 5)


async def test_children_end_however_they_end_and_their_errors_are_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    async def sleeps() -> None:
        await asyncio.sleep(3600)

    done_early = asyncio.create_task(fails())
    running = asyncio.create_task(sleeps())
    await asyncio.sleep(0)
    await cancel_and_wait([done_early, running])
    assert running.cancelled()
    assert isinstance(done_early.exception(), RuntimeError)
    await cancel_and_wait([])
