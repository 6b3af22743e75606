from __future__ import annotations

from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.controllers.manager import ControllerContext, ControllerOptions
from pyk8s.controllers.podgc import PodGCController
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

PODS, NODES = info("", "pods"), info("", "nodes")
NS = "default"


def fast(ctx: ControllerContext) -> PodGCController:
    return PodGCController(ctx, period=0.1)


def pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


async def set_phase(client: Client, name: str, phase: str) -> None:
    p = await client.get(PODS, name, NS)
    p["status"] = {"phase": phase}
    await client.update_status(PODS, p)


async def names(client: Client) -> set[str]:
    return {p["metadata"]["name"] for p in (await client.list(PODS, NS))["items"]}


async def test_terminated_pods_beyond_threshold_deleted_oldest_first() -> None:
    async with api_server() as srv:
        async with running(srv) as (client, _):
            for i in range(5):
                await client.create(PODS, pod(f"t{i}"), NS)
                await set_phase(client, f"t{i}", "Succeeded" if i % 2 else "Failed")
            await client.create(PODS, pod("running"), NS)
        opts = ControllerOptions(terminated_pod_gc_threshold=3)
        async with running(srv, fast, options=opts) as (client, _):
            async def trimmed() -> bool:
                return await names(client) == {"t2", "t3", "t4", "running"}
            await until(trimmed, what="two oldest terminated pods deleted")


async def test_pods_of_a_missing_node_deleted_after_quarantine() -> None:
    opts = ControllerOptions(pod_gc_quarantine=0.3)
    async with api_server() as srv, running(srv, fast, options=opts) as (client, _):
        await client.create(NODES, {"metadata": {"name": "here"}})
        await client.create(PODS, pod("kept", "here"), NS)
        await client.create(PODS, pod("lost", "nowhere"), NS)
        await until(lambda: _gone(client, "lost"), what="pod of a missing node deleted")
        assert await names(client) == {"kept"}


async def test_terminating_pods_on_an_out_of_service_node_force_deleted() -> None:
    async with api_server() as srv, running(srv, fast) as (client, _):
        await client.create(NODES, {"metadata": {"name": "n1"}})
        await client.create(PODS, pod("stuck", "n1"), NS)
        await set_phase(client, "stuck", "Running")
        await client.delete(PODS, "stuck", NS)  # graceful: waits for a kubelet that will never come
        assert (await client.get(PODS, "stuck", NS))["metadata"]["deletionTimestamp"]
        await client.patch(NODES, "n1", {"spec": {"taints": [
            {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}]}})
        await until(lambda: _gone(client, "stuck"), what="terminating pod force-deleted")


async def _gone(client: Client, name: str) -> bool:
    try:
        await client.get(PODS, name, NS)
    except StatusError as e:
        return e.code == 404
    return False
