"""Leader election between candidates sharing one Lease on a real API server (short durations)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest

from pyk8s.client.client import Client
from pyk8s.client.leader import LEASES, LeaderElectionConfig, LeaderElector
from tests.client.conftest import eventually


class Candidate:
    def __init__(self, client: Client, identity: str, release: bool = True) -> None:
        self.started = 0
        self.stopped = 0
        self.working = False
        self.elector = LeaderElector(
            client,
            LeaderElectionConfig("ctrl", "default", identity, lease_duration=2.0, renew_deadline=1.0,
                                 retry_period=0.1, release_on_cancel=release),
            on_started_leading=self._lead, on_stopped_leading=self._stop)
        self.task: asyncio.Task[None] | None = None
        self.leaders: list[str] = []
        self.elector.on_new_leader = self.leaders.append

    async def _lead(self) -> None:
        self.started += 1
        self.working = True
        try:
            await asyncio.Event().wait()
        finally:
            self.working = False

    def _stop(self) -> None:
        self.stopped += 1

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def cancel(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def never_two_leaders(candidates: list[Candidate], stop: asyncio.Event) -> None:
    while not stop.is_set():
        assert sum(c.working for c in candidates) <= 1, "two candidates ran the work at once"
        await asyncio.sleep(0.005)


async def test_config_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig("x", lease_duration=10, renew_deadline=10)


async def test_one_leads_and_the_other_takes_over_after_release(client: Client) -> None:
    a, b = Candidate(client, "a"), Candidate(client, "b")
    stop = asyncio.Event()
    watchdog = asyncio.create_task(never_two_leaders([a, b], stop))
    a.start()
    await eventually(lambda: a.working, what="a leading")
    b.start()
    # b has read the lease and sees a's unexpired claim; the watchdog checks it never runs the work.
    await eventually(lambda: b.elector.leader == "a", what="b observing a")
    assert not b.working and not b.elector.is_leader()
    lease = await client.get(LEASES, "ctrl", "default")
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 2

    await a.cancel()  # releases: b need not wait out the lease
    assert a.stopped == 1 and not a.working
    await eventually(lambda: b.working, within=1.0, what="b taking over after the release")
    lease = await client.get(LEASES, "ctrl", "default")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1
    assert b.leaders == ["a", "b"]
    await b.cancel()
    stop.set()
    await watchdog


async def test_takes_over_when_the_leader_stops_renewing(client: Client) -> None:
    a = Candidate(client, "a", release=False)
    b = Candidate(client, "b")
    a.start()
    await eventually(lambda: a.working, what="a leading")
    b.start()
    await a.cancel()  # gone without releasing, as a crashed process
    loop = asyncio.get_running_loop()
    gone_at = loop.time()
    assert (await client.get(LEASES, "ctrl", "default"))["spec"]["holderIdentity"] == "a"
    await eventually(lambda: b.working, within=5.0, what="b taking over the expired lease")
    # b waited for the lease to expire as it observed it (2 s).
    assert loop.time() - gone_at >= 1.5
    await b.cancel()


async def test_a_leader_that_cannot_renew_stops_its_work(client: Client) -> None:
    a = Candidate(client, "a")
    a.start()
    await eventually(lambda: a.working, what="a leading")
    # Someone else writes the lease as theirs (an admin, or a split brain): a cannot renew any more.
    lease = await client.get(LEASES, "ctrl", "default")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease["spec"].update(holderIdentity="intruder", renewTime=now, leaseDurationSeconds=60)
    await client.update(LEASES, lease)
    assert a.task is not None
    async with asyncio.timeout(5):
        await a.task  # run() returns once the renew deadline passed
    assert not a.working and a.stopped == 1 and not a.elector.is_leader()
    # It did not release someone else's lease.
    assert (await client.get(LEASES, "ctrl", "default"))["spec"]["holderIdentity"] == "intruder"
