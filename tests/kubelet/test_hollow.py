"""Hollow nodes against a real in-process API server: registration, leases, and the pods they play."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.hollow import HollowConfig, HollowNodes
from tests.controllers._housekeeping import until
from tests.support.apiserver import Server, api_server

NODES = catalog.lookup("", "v1", "nodes")
PODS = catalog.lookup("", "v1", "pods")
LEASES = catalog.lookup("coordination.k8s.io", "v1", "leases")
NAMESPACES = catalog.lookup("", "v1", "namespaces")
assert NODES and PODS and LEASES and NAMESPACES


@contextlib.asynccontextmanager
async def hollow(srv: Server, **config: Any) -> AsyncIterator[tuple[Client, HollowNodes]]:
    client = Client(HTTPTransport(srv.url))
    try:
        await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
    except Exception:
        pass  # a second agent on the same server
    nodes = HollowNodes(client, HollowConfig(**{"count": 3, "renew_interval": 0.2, "complete_after": 0.2,
                                                 **config}))
    task = asyncio.create_task(nodes.run())
    try:
        async with asyncio.timeout(10):
            await nodes.registered.wait()
        yield client, nodes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


def pod(name: str, node: str, restart: str = "Always", containers: int = 2) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "restartPolicy": restart,
                     "containers": [{"name": f"c{i}", "image": "busybox"} for i in range(containers)]}}


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


async def test_nodes_register_ready_with_capacity_labels_and_renewed_leases() -> None:
    async with api_server() as srv, hollow(srv, prefix="hn", cpu="8", memory="16Gi", pods=50) as (client, _):
        listed = (await client.list(NODES))["items"]
        assert sorted(n["metadata"]["name"] for n in listed) == ["hn-0", "hn-1", "hn-2"]
        for n in listed:
            name = n["metadata"]["name"]
            assert n["metadata"]["labels"] == {
                "type": "hollow", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64"}
            status = n["status"]
            assert status["capacity"] == {"cpu": "8", "memory": "16Gi", "pods": "50",
                                          "ephemeral-storage": "100Gi"}
            assert status["allocatable"] == status["capacity"]
            assert conditions(n) == {"MemoryPressure": "False", "DiskPressure": "False",
                                     "PIDPressure": "False", "Ready": "True"}
            assert {a["type"] for a in status["addresses"]} == {"InternalIP", "Hostname"}
            assert status["nodeInfo"]["kubeletVersion"].startswith("v1.")
        ips = {a["address"] for n in listed for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
        assert len(ips) == 3

        first = await until(lambda: _lease(client, "hn-1"), what="hn-1's lease")
        assert first["spec"]["holderIdentity"] == "hn-1"
        assert first["spec"]["leaseDurationSeconds"] == 40
        assert first["metadata"]["ownerReferences"][0]["kind"] == "Node"

        async def renewed() -> bool:
            lease = await _lease(client, "hn-1")
            return lease is not None and lease["spec"]["renewTime"] != first["spec"]["renewTime"]

        await until(renewed, what="a renewed lease")


async def test_a_restarted_agent_takes_over_the_leases_it_finds() -> None:
    async with api_server() as srv:
        async with hollow(srv, prefix="hr", count=1) as (client, _):
            await until(lambda: _lease(client, "hr-0"), what="hr-0's lease")
        # A lease left by the last run, stale and held by another name: renewed and taken over.
        async with hollow(srv, prefix="hr", count=1, renew_interval=60) as (client, _):
            stale = await until(lambda: _lease(client, "hr-0"), what="hr-0's lease")
            stale["spec"]["holderIdentity"] = "someone-else"
            stale["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"
            await client.update(LEASES, stale)
        async with hollow(srv, prefix="hr", count=1) as (client, _):
            async def taken() -> bool:
                lease = await _lease(client, "hr-0")
                return lease is not None and lease["spec"]["holderIdentity"] == "hr-0" \
                    and not lease["spec"]["renewTime"].startswith("2000")

            await until(taken, what="the lease taken over")
            leases = (await client.list(LEASES, "kube-node-lease"))["items"]
            assert [x["metadata"]["name"] for x in leases] == ["hr-0"]


async def _lease(client: Client, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(LEASES, name, "kube-node-lease")
    except Exception:
        return None


async def test_pods_run_complete_and_are_deleted_like_a_kubelet_would() -> None:
    async with api_server() as srv, hollow(srv) as (client, _):
        await client.create(PODS, pod("web", "hollow-1"))
        await client.create(PODS, pod("job", "hollow-2", restart="Never", containers=1))
        await client.create(PODS, pod("elsewhere", "real-node"))

        async def phase(name: str, want: str) -> dict[str, Any] | None:
            p = await client.get(PODS, name, "default")
            return p if p["status"].get("phase") == want else None

        web = await until(lambda: phase("web", "Running"), what="web Running")
        st = web["status"]
        assert conditions(web) == {
            "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
            "ContainersReady": "True"}
        assert [c["name"] for c in st["containerStatuses"]] == ["c0", "c1"]
        for cs in st["containerStatuses"]:
            assert cs["ready"] and cs["started"] and "running" in cs["state"]
            assert cs["containerID"].startswith("hollow://")
        assert st["podIP"] and st["hostIP"] and st["startTime"]
        node = await client.get(NODES, "hollow-1")
        assert st["hostIP"] == node["status"]["addresses"][0]["address"]

        job = await until(lambda: phase("job", "Succeeded"), what="job Succeeded")
        term = job["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0 and term["reason"] == "Completed"
        assert conditions(job)["Ready"] == "False"

        # A graceful delete waits for the node; the hollow kubelet confirms it at once.
        await client.delete(PODS, "web", "default")

        async def gone() -> bool:
            names = [p["metadata"]["name"] for p in (await client.list(PODS, "default"))["items"]]
            return "web" not in names

        await until(gone, what="web deleted")
        # A pod bound later, as the scheduler binds, is seen and played too.
        late = pod("late", "")
        del late["spec"]["nodeName"]
        await client.create(PODS, late)
        await client.create_subresource(PODS, "late", "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "late"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "hollow-0"}}, "default")
        await until(lambda: phase("late", "Running"), what="late Running")
        # A pod bound to a node the agent does not play is left alone.
        assert (await client.get(PODS, "elsewhere", "default"))["status"]["phase"] == "Pending"


async def test_a_pod_marked_not_ready_is_reported_ready_again() -> None:
    async with api_server() as srv, hollow(srv, count=1) as (client, _):
        await client.create(PODS, pod("web", "hollow-0"))

        async def ready(value: str) -> bool:
            return conditions(await client.get(PODS, "web", "default")).get("Ready") == value

        await until(lambda: ready("True"), what="web Ready")
        # As the node lifecycle controller does to the pods of a node that went silent.
        await client.patch(PODS, "web", {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "NodeNotReady"}]}}, "strategic", "default",
            subresource="status")
        await until(lambda: ready("True"), what="web Ready again")


async def test_a_node_marked_not_ready_or_deleted_is_brought_back() -> None:
    async with api_server() as srv, hollow(srv, count=1) as (client, _):
        node = await client.get(NODES, "hollow-0")
        for c in node["status"]["conditions"]:
            if c["type"] == "Ready":
                c.update(status="Unknown", reason="NodeStatusUnknown")
        await client.update_status(NODES, node)

        async def ready() -> bool:
            return conditions(await client.get(NODES, "hollow-0")).get("Ready") == "True"

        await until(ready, what="Ready again")
        await client.delete(NODES, "hollow-0")

        async def registered() -> bool:
            try:
                return bool(await client.get(NODES, "hollow-0"))
            except Exception:
                return False

        await until(registered, what="the node registered again")
