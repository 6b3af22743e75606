"""The scheduling queue: order, backoff, parking and moving back on cluster events."""

from __future__ import annotations

import asyncio
from typing import Any

from pyk8s.scheduler import queue as q


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, priority: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": name}, "spec": {"priority": priority}}


async def pop(queue: q.SchedulingQueue) -> str:
    async with asyncio.timeout(2):
        return (await queue.pop()).key


async def test_priority_then_arrival() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    for name, prio in (("a", 0), ("b", 10), ("c", 0), ("d", 10)):
        queue.add(pod(name, prio))
        clock.now += 1
    assert [await pop(queue) for _ in range(4)] == ["default/b", "default/d", "default/a", "default/c"]


async def test_backoff_doubles_to_ten_seconds() -> None:
    queue = q.SchedulingQueue(Clock())
    assert [queue.backoff_duration(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


async def test_failure_with_error_waits_out_its_backoff() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    queue.add(pod("a"))
    qp = await queue.pop()
    assert qp.attempts == 1
    queue.add_unschedulable(qp.pod, error=True)
    assert queue.where("default/a") == "backoff"
    assert queue.flush_backoff() == 1.0
    clock.now += 1.0
    assert queue.flush_backoff() is None
    assert queue.where("default/a") == "active"
    qp = await queue.pop()
    assert qp.attempts == 2
    queue.add_unschedulable(qp.pod, error=True)
    assert queue.flush_backoff() == 2.0


async def test_parked_until_a_relevant_event() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    queue.add(pod("a"))
    qp = await queue.pop()
    queue.add_unschedulable(qp.pod, {"NodeResourcesFit"})
    assert queue.where("default/a") == "unschedulable"
    assert queue.move_all(q.ASSIGNED_POD_ADD) == 0  # a new pod frees no cpu
    assert queue.where("default/a") == "unschedulable"
    assert queue.move_all(q.ASSIGNED_POD_DELETE) == 1
    assert queue.where("default/a") == "backoff"  # its 1 s backoff has not run out
    clock.now += 1.0
    queue.flush_backoff()
    assert queue.where("default/a") == "active"
    assert await pop(queue) == "default/a"


async def test_node_add_moves_everything_and_expired_backoff_goes_active() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    queue.add(pod("a"))
    qp = await queue.pop()
    queue.add_unschedulable(qp.pod, {"TaintToleration"})
    clock.now += 5
    assert queue.move_all(q.NODE_ADD) == 1
    assert queue.where("default/a") == "active"


async def test_event_during_the_cycle_sends_the_pod_to_backoff() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    queue.add(pod("a"))
    qp = await queue.pop()
    queue.move_all(q.NODE_ADD)  # a node came while the pod was being scheduled
    queue.add_unschedulable(qp.pod, {"NodeAffinity"})
    assert queue.where("default/a") == "backoff"


async def test_flushed_after_five_minutes() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    queue.add(pod("a"))
    qp = await queue.pop()
    queue.add_unschedulable(qp.pod, {"NodeAffinity"})
    clock.now += 200
    queue.flush_unschedulable()
    assert queue.where("default/a") == "unschedulable"
    clock.now += 101
    queue.flush_unschedulable()
    assert queue.where("default/a") == "active"


async def test_update_of_parked_pod_and_delete() -> None:
    clock = Clock()
    queue = q.SchedulingQueue(clock)
    queue.add(pod("a"))
    qp = await queue.pop()
    queue.add_unschedulable(qp.pod, {"NodeAffinity"})
    clock.now += 2
    queue.update(pod("a"), spec_changed=False)
    assert queue.where("default/a") == "unschedulable"
    queue.update(pod("a"), spec_changed=True)
    assert queue.where("default/a") == "active"
    queue.delete("default/a")
    assert queue.where("default/a") is None and len(queue) == 0


async def test_pop_waits_for_a_pod() -> None:
    queue = q.SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add(pod("late"))
    async with asyncio.timeout(2):
        assert (await waiter).key == "default/late"


async def test_in_flight_pod_is_not_added_twice() -> None:
    queue = q.SchedulingQueue(Clock())
    queue.add(pod("a"))
    await queue.pop()
    queue.add(pod("a"))  # an informer event while it is being scheduled
    assert len(queue) == 0
    queue.done("default/a")
