"""The kubelet's Node against a real in-process API server: registration from host readings, pressure
conditions, the Lease, RuntimeClasses and the podCIDR handed on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.node import KUBELET_VERSION, HostReadings, NodeAgent, read_host
from tests.support.apiserver import api_server
from tests.support.poll import eventually, until

NODES = catalog.lookup("", "v1", "nodes")
LEASES = catalog.lookup("coordination.k8s.io", "v1", "leases")
RUNTIME_CLASSES = catalog.lookup("node.k8s.io", "v1", "runtimeclasses")
NAMESPACES = catalog.lookup("", "v1", "namespaces")
assert NODES and LEASES and RUNTIME_CLASSES and NAMESPACES


def test_host_readings_are_real(tmp_path: Path) -> None:
    h = read_host(str(tmp_path))
    assert h.cpus == len(os.sched_getaffinity(0))
    assert 0 < h.memory_available <= h.memory_total
    assert 0 < h.disk_free <= h.disk_total
    assert 0 < h.pids_used < h.pid_max


async def test_node_registers_with_capacity_info_conditions_lease_and_runtime_classes(tmp_path: Path) -> None:
    async with api_server() as srv:
        client = Client(HTTPTransport(srv.url))
        await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        cidrs: list[str] = []
        agent = NodeAgent(client, "n1", str(tmp_path), runtime_version="runc://1.1.5",
                          handlers=["runc", "runsc"], node_ip="192.0.2.7", kubelet_port=10250,
                          status_interval=0.1, lease_duration=1, on_pod_cidr=cidrs.append)
        task = asyncio.create_task(agent.run())
        try:
            await asyncio.wait_for(agent.registered.wait(), 20)
            node = await client.get(NODES, "n1")
            st = node["status"]
            assert st["capacity"]["cpu"] == str(len(os.sched_getaffinity(0)))
            assert st["capacity"]["pods"] == "110"
            assert st["allocatable"]["memory"].endswith("Ki")
            assert int(st["allocatable"]["memory"][:-2]) < int(st["capacity"]["memory"][:-2])
            assert {"type": "InternalIP", "address": "192.0.2.7"} in st["addresses"]
            assert {"type": "Hostname", "address": "n1"} in st["addresses"]
            assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
            info = st["nodeInfo"]
            assert info["kubeletVersion"] == KUBELET_VERSION == "v1.32.0-pyk8s"
            assert info["containerRuntimeVersion"] == "runc://1.1.5"
            assert info["kernelVersion"] == os.uname().release and info["operatingSystem"] == "linux"
            conds = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
            assert conds["Ready"] == ("True", "KubeletReady")
            assert conds["MemoryPressure"] == ("False", "KubeletHasSufficientMemory")
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
            rcs = {r["metadata"]["name"]: r["handler"] for r in (await client.list(RUNTIME_CLASSES))["items"]}
            assert rcs == {"runc": "runc", "gvisor": "runsc"}

            async def renewed() -> object:
                try:
                    lease = await client.get(LEASES, "n1", "kube-node-lease")
                except Exception:
                    return None
                return lease["spec"]["holderIdentity"] == "n1" and lease["metadata"]["ownerReferences"]
            await until(renewed, what="lease")

            # The node IPAM controller's podCIDR reaches the network.
            cidr = "10.42.3.0/24"
            await client.patch(NODES, "n1", {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
            await eventually(lambda: cidrs == ["10.42.3.0/24"], within=20, what="podCIDR handed on")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()



async def test_pressure_conditions_follow_readings(tmp_path: Path) -> None:
    async with api_server() as srv:
        client = Client(HTTPTransport(srv.url))
        low = HostReadings(cpus=2, memory_total=8 << 30, memory_available=50 << 20, disk_total=100 << 30,
                           disk_free=1 << 30, pids_used=100, pid_max=1000)
        agent = NodeAgent(client, "n2", str(tmp_path), runtime_version="runc://1.1.5", handlers=["runc"],
                          node_ip="192.0.2.8", readings=lambda _d: low)
        await agent.register()
        st = (await client.get(NODES, "n2"))["status"]
        conds = {c["type"]: (c["status"], c["reason"], c["message"]) for c in st["conditions"]}
        assert conds["MemoryPressure"] == ("True", "KubeletHasInsufficientMemory",
                                           "kubelet has insufficient memory available")
        assert conds["DiskPressure"] == ("True", "KubeletHasDiskPressure", "kubelet has disk pressure")
        assert conds["PIDPressure"][0] == "False"
        await client.close()
