"""The assembled Kubelet over the fake runtime: the Node registers, RuntimeClasses exist, a pod runs with
the node's address as hostIP, and the podCIDR reaches the network."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.client.transport import HTTPTransport
from pyk8s.kubelet.kubelet import Kubelet
from tests.kubelet._harness import NODE, container, pod, state
from tests.kubelet.fakeruntime import FakeImages, FakeRuntime
from tests.support.apiserver import api_server
from tests.support.poll import eventually, until

NODES = catalog.lookup("", "v1", "nodes")
PODS = catalog.lookup("", "v1", "pods")
NAMESPACES = catalog.lookup("", "v1", "namespaces")
RUNTIME_CLASSES = catalog.lookup("node.k8s.io", "v1", "runtimeclasses")
assert NODES and PODS and NAMESPACES and RUNTIME_CLASSES


class Network:
    def __init__(self) -> None:
        self.cidrs: list[str] = []

    def set_pod_cidr(self, cidr: str) -> None:
        self.cidrs.append(cidr)


async def test_kubelet_registers_and_runs_pods(tmp_path: Path) -> None:
    async with api_server() as srv:
        client = Client(HTTPTransport(srv.url))
        await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        network = Network()
        kubelet = Kubelet(client, NODE, str(tmp_path), runtime=FakeRuntime(handler_names=["runc", "runsc"]),
                          images=FakeImages(), network=network, node_ip="192.0.2.9", relist_period=0.05,
                          probe_time_scale=0.1)
        task = asyncio.create_task(kubelet.run())
        try:
            async with asyncio.timeout(20):
                await kubelet.node.registered.wait()
            await client.patch(NODES, NODE, {"spec": {"podCIDR": "10.88.7.0/24"}})
            await client.create(PODS, pod("k", container("c")))

            async def running() -> object:
                p = await client.get(PODS, "k", "default")
                return "running" in state(p, "c").get("state", {}) and p

            p = await until(running, what="pod running")
            assert p["status"]["hostIP"] == "192.0.2.9"
            await eventually(lambda: network.cidrs == ["10.88.7.0/24"], within=20, what="podCIDR")
            names = {r["metadata"]["name"] for r in (await client.list(RUNTIME_CLASSES))["items"]}
            assert names == {"runc", "gvisor"}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

