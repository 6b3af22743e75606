from __future__ import annotations

from typing import Any

from pyk8s.client.client import Client
from pyk8s.controllers.endpointslice import EndpointSliceController
from pyk8s.controllers.garbagecollector import GarbageCollector
from pyk8s.controllers.manager import ControllerContext
from tests.controllers._housekeeping import running, until
from tests.controllers._pods import PODS, SERVICES, make_pod, set_ready, web_service
from tests.support.apiserver import api_server, info

SLICES, NODES = info("discovery.k8s.io", "endpointslices"), info("", "nodes")
NS = "default"
ZONE = "topology.kubernetes.io/zone"


def small(ctx: ControllerContext) -> EndpointSliceController:
    return EndpointSliceController(ctx, max_endpoints_per_slice=2)


async def slices(client: Client, service: str) -> list[dict[str, Any]]:
    items = (await client.list(SLICES, NS, label_selector=f"kubernetes.io/service-name={service}"))["items"]
    return sorted(items, key=lambda s: s["metadata"]["name"])


def by_ip(items: list[dict[str, Any]]) -> dict[str, tuple[int | None, dict[str, Any]]]:
    """IP → (its slice's port, the endpoint)."""
    out = {}
    for s in items:
        port = s["ports"][0]["port"] if s.get("ports") else None
        for ep in s.get("endpoints") or []:
            out[ep["addresses"][0]] = (port, ep)
    return out


async def test_slices_per_port_set_with_conditions_and_size_limit() -> None:
    async with api_server() as srv, running(srv, small, GarbageCollector) as (client, _):
        svc = await client.create(SERVICES, web_service(), NS)
        await client.create(NODES, {"metadata": {"name": "n2", "labels": {ZONE: "z2"}}})

        async def placeholder() -> list[dict[str, Any]] | None:
            items = await slices(client, "web")
            return items if len(items) == 1 and not items[0].get("endpoints") else None
        await until(placeholder, what="an empty placeholder slice")

        for i in range(1, 4):
            await make_pod(client, f"web-{i}", f"10.0.0.{i}", True, port=8080)
        await make_pod(client, "web-4", "10.0.0.4", False, port=9090, node="n2")
        await make_pod(client, "web-5", "10.0.0.5", True, port=8080, hostname="h5", subdomain="web")
        await make_pod(client, "going", "10.0.0.6", True, port=9090, finalizers=["example.com/hold"])
        await make_pod(client, "noport", "10.0.0.7", True)
        await client.delete(PODS, "going", NS, grace_period_seconds=0)

        async def settled() -> list[dict[str, Any]] | None:
            items = await slices(client, "web")
            eps = by_ip(items)
            done = set(eps) == {f"10.0.0.{i}" for i in range(1, 7)} \
                and eps["10.0.0.6"][1]["conditions"]["terminating"] and eps["10.0.0.4"][1].get("zone") == "z2"
            return items if done else None
        items = await until(settled, what="slices of web")
        # 8080: four endpoints in two slices of two; 9090: two endpoints in one slice.
        assert sorted(len(s["endpoints"]) for s in items) == [2, 2, 2]
        eps = by_ip(items)
        assert {ip: port for ip, (port, _) in eps.items()} == {
            "10.0.0.1": 8080, "10.0.0.2": 8080, "10.0.0.3": 8080, "10.0.0.5": 8080,
            "10.0.0.4": 9090, "10.0.0.6": 9090}
        for s in items:
            assert s["addressType"] == "IPv4"
            assert s["metadata"]["generateName"] == "web-"
            assert s["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                               "endpointslice.kubernetes.io/managed-by":
                                                   "endpointslice-controller.k8s.io"}
            assert s["metadata"]["ownerReferences"] == [{
                "apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
            assert s["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
            assert s["ports"][0]["name"] == "http" and s["ports"][0]["protocol"] == "TCP"
        assert eps["10.0.0.1"][1]["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert eps["10.0.0.4"][1]["conditions"] == {"ready": False, "serving": False, "terminating": False}
        assert eps["10.0.0.6"][1]["conditions"] == {"ready": False, "serving": True, "terminating": True}
        assert eps["10.0.0.5"][1]["hostname"] == "h5" and "hostname" not in eps["10.0.0.1"][1]
        assert eps["10.0.0.4"][1]["nodeName"] == "n2" and eps["10.0.0.4"][1]["zone"] == "z2"
        assert "zone" not in eps["10.0.0.1"][1]
        assert eps["10.0.0.1"][1]["targetRef"]["name"] == "web-1"

        # Fewer pods: the 8080 set fits one slice again; the extra slice is deleted.
        await client.delete(PODS, "web-1", NS, grace_period_seconds=0)
        await client.delete(PODS, "web-2", NS, grace_period_seconds=0)
        await set_ready(client, "web-4", True)

        async def shrunk() -> bool:
            items = await slices(client, "web")
            eps = by_ip(items)
            return len(items) == 2 and set(eps) == {"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"} \
                and eps["10.0.0.4"][1]["conditions"]["ready"]
        await until(shrunk, what="slices shrunk and readiness updated")

        # A node moving zone moves its endpoints with it.
        await client.patch(NODES, "n2", {"metadata": {"labels": {ZONE: "z3"}}})

        async def rezoned() -> bool:
            return by_ip(await slices(client, "web"))["10.0.0.4"][1].get("zone") == "z3"
        await until(rezoned, what="endpoint zone follows its node")

        # Deleting the Service takes its slices with it (they are owned by it).
        await client.delete(SERVICES, "web", NS)

        async def none_left() -> bool:
            return await slices(client, "web") == []
        await until(none_left, what="slices of a deleted service collected")


async def test_publish_not_ready_and_no_selector() -> None:
    async with api_server() as srv, running(srv, EndpointSliceController) as (client, _):
        await client.create(SERVICES, web_service("all", publish_not_ready=True), NS)
        await client.create(SERVICES, web_service("manual", selector={}), NS)
        await make_pod(client, "web-1", "10.0.0.1", False, port=8080)

        async def published() -> bool:
            eps = by_ip(await slices(client, "all"))
            return "10.0.0.1" in eps and eps["10.0.0.1"][1]["conditions"]["ready"] is True
        await until(published, what="not-ready pod published as ready")
        assert await slices(client, "manual") == []
