"""The controller manager: registry selection, controllers run over shared informers, leader election."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformerFactory
from pyk8s.client.leader import LEASES, LeaderElectionConfig
from pyk8s.client.transport import HTTPTransport
from pyk8s.controllers.manager import (
    REGISTRY,
    ControllerContext,
    ControllerManager,
    ControllerOptions,
    enabled_controllers,
)
from pyk8s.controllers.replicaset import REPLICASETS
from tests.controllers._apps import pods
from tests.controllers._housekeeping import until
from tests.support.apiserver import NAMESPACES, api_server


def replicaset(name: str, replicas: int) -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def test_enabled_controllers() -> None:
    assert enabled_controllers(["*"]) == list(REGISTRY)
    assert "deployment" not in enabled_controllers(["*", "-deployment"])
    assert enabled_controllers(["replicaset", "deployment"]) == ["replicaset", "deployment"]
    with pytest.raises(ValueError, match="unknown controllers: nope"):
        enabled_controllers(["nope"])


def manager(url: str, identity: str, leader_election: bool = True) -> tuple[Client, ControllerManager]:
    client = Client(HTTPTransport(url))
    ctx = ControllerContext(client, SharedInformerFactory(client), ControllerOptions())
    election = LeaderElectionConfig(name="kube-controller-manager", identity=identity, lease_duration=3.0,
                                    renew_deadline=2.0, retry_period=0.2)
    return client, ControllerManager(ctx, ["replicaset", "deployment"], leader_election=leader_election,
                                     election=election)


async def test_runs_controllers_without_leader_election() -> None:
    async with api_server() as srv:
        client, mgr = manager(srv.url, "solo", leader_election=False)
        task = asyncio.create_task(mgr.run())
        try:
            async with asyncio.timeout(10):
                await mgr.running.wait()
            assert set(mgr.controllers) == {"replicaset", "deployment"}
            await client.create(REPLICASETS, replicaset("web", 2), "default")
            await until(lambda: _n_pods(client, 2), what="pods from the managed ReplicaSet controller")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await mgr.ctx.informers.stop()
            await client.close()
        assert not mgr.running.is_set()


async def test_only_the_leader_runs_controllers_and_a_successor_takes_over() -> None:
    async with api_server() as srv:
        await srv.api.create_object(NAMESPACES, {"metadata": {"name": "kube-system"}})
        client_a, a = manager(srv.url, "a")
        client_b, b = manager(srv.url, "b")
        task_a = asyncio.create_task(a.run())
        try:
            async with asyncio.timeout(10):
                await a.running.wait()
            task_b = asyncio.create_task(b.run())
            lease = await until(lambda: _holder(client_a, "a"), what="a holds the lease")
            assert lease["metadata"]["namespace"] == "kube-system"
            await client_a.create(REPLICASETS, replicaset("web", 1), "default")
            await until(lambda: _n_pods(client_a, 1), what="a's controllers at work")
            assert not b.running.is_set()  # b campaigns but runs nothing

            # a stops (releasing the lease): b takes over and its controllers act.
            task_a.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task_a
            async with asyncio.timeout(10):
                await b.running.wait()
            await until(lambda: _holder(client_b, "b"), what="b holds the lease")
            await client_b.patch(REPLICASETS, "web", {"spec": {"replicas": 3}}, "merge", "default")
            await until(lambda: _n_pods(client_b, 3), what="b's controllers at work")
            task_b.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task_b
        finally:
            task_a.cancel()
            for m in (a, b):
                await m.ctx.informers.stop()
            await client_a.close()
            await client_b.close()


async def _n_pods(client: Client, n: int) -> bool:
    return len(await pods(client)) == n


async def _holder(client: Client, identity: str) -> dict[str, object] | None:
    lease = await client.get(LEASES, "kube-controller-manager", "kube-system")
    return lease if lease["spec"].get("holderIdentity") == identity else None


async def test_lost_leadership_stops_the_controllers() -> None:
    async with api_server() as srv:
        await srv.api.create_object(NAMESPACES, {"metadata": {"name": "kube-system"}})
        client, mgr = manager(srv.url, "a")
        task = asyncio.create_task(mgr.run())
        try:
            async with asyncio.timeout(10):
                await mgr.running.wait()
            # Another manager takes the Lease (as after a network partition): a cannot renew and must stop.
            async def take_lease() -> bool:
                lease = await client.get(LEASES, "kube-controller-manager", "kube-system")
                lease["spec"]["holderIdentity"] = "intruder"
                lease["spec"]["leaseDurationSeconds"] = 60
                try:
                    await client.update(LEASES, lease, "kube-system")
                except StatusError as e:  # a renewal came in between: read it again
                    if e.code != 409:
                        raise
                    return False
                return True

            await until(take_lease, within=10, what="the lease taken")
            await until(lambda: _stopped(mgr), within=10, what="controllers stopped")
            # Stopped for real: no handler of the term is left on the informers, which run on (current
            # for the next term, and for a scheduler sharing them); it campaigns again.
            informers = mgr.ctx.informers.informers
            assert informers and all(i.running for i in informers)
            assert not any(i._handlers or i._joining for i in informers)
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await mgr.ctx.informers.stop()
            await client.close()


async def _stopped(mgr: ControllerManager) -> bool:
    return not mgr.running.is_set()
