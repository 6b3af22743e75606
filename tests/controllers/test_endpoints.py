from __future__ import annotations

from typing import Any

from pyk8s.api.errors import StatusError
from pyk8s.client.client import Client
from pyk8s.controllers.endpoints import EndpointsController, truncate
from tests.controllers._housekeeping import running, until
from tests.controllers._pods import PODS, SERVICES, make_pod, set_ready, web_service
from tests.support.apiserver import api_server, info

EP = info("", "endpoints")
NS = "default"


async def endpoints(client: Client, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(EP, name, NS)
    except StatusError as e:
        assert e.code == 404
        return None


def ips(ep: dict[str, Any] | None, field: str = "addresses") -> dict[int, list[str]]:
    """Target port → IPs in that field."""
    out: dict[int, list[str]] = {}
    for subset in (ep or {}).get("subsets") or []:
        for port in subset.get("ports") or []:
            out.setdefault(port["port"], []).extend(a["ip"] for a in subset.get(field) or [])
    return out


async def test_ready_and_not_ready_addresses_with_named_ports() -> None:
    async with api_server() as srv, running(srv, EndpointsController) as (client, _):
        await client.create(SERVICES, web_service(), NS)
        await make_pod(client, "web-1", "10.0.0.1", True, port=8080)
        await make_pod(client, "web-2", "10.0.0.2", False, port=9090)
        await make_pod(client, "web-3", None, True, port=8080)  # no IP yet: left out
        await make_pod(client, "web-4", "10.0.0.4", True)  # no port named http: left out
        await make_pod(client, "web-5", "10.0.0.5", True, port=8080, hostname="h5", subdomain="web",
                       node="n2")
        await make_pod(client, "other", "10.0.0.9", True, port=8080, labels={"app": "other"})
        await make_pod(client, "going", "10.0.0.6", True, port=8080, finalizers=["example.com/hold"])
        await client.delete(PODS, "going", NS, grace_period_seconds=0)

        async def settled() -> dict[str, Any] | None:
            ep = await endpoints(client, "web")
            want = ({8080: ["10.0.0.1", "10.0.0.5"]}, {9090: ["10.0.0.2"]})
            return ep if (ips(ep), ips(ep, "notReadyAddresses")) == ({**want[0], 9090: []},
                                                                      {8080: [], **want[1]}) else None
        ep = await until(settled, what="endpoints of web")
        assert ep["metadata"]["labels"] == {"team": "a"}
        assert ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
        by_ip = {a["ip"]: a for s in ep["subsets"]
                 for a in s.get("addresses", []) + s.get("notReadyAddresses", [])}
        assert by_ip["10.0.0.5"]["hostname"] == "h5" and by_ip["10.0.0.5"]["nodeName"] == "n2"
        assert "hostname" not in by_ip["10.0.0.1"]
        ref = by_ip["10.0.0.1"]["targetRef"]
        assert ref["kind"] == "Pod" and ref["name"] == "web-1" and ref["uid"]
        assert ep["subsets"][0]["ports"][0]["name"] == "http"

        # Readiness moves an address between the lists.
        await set_ready(client, "web-2", True)
        await set_ready(client, "web-1", False)

        async def moved() -> bool:
            ep = await endpoints(client, "web")
            return ips(ep) == {8080: ["10.0.0.5"], 9090: ["10.0.0.2"]} and \
                ips(ep, "notReadyAddresses") == {8080: ["10.0.0.1"], 9090: []}
        await until(moved, what="readiness changes reflected")

        await client.delete(SERVICES, "web", NS)
        await until(lambda: _none(endpoints(client, "web")), what="endpoints of a deleted service removed")


async def test_publish_not_ready_and_services_without_selector() -> None:
    async with api_server() as srv, running(srv, EndpointsController) as (client, _):
        await client.create(SERVICES, web_service("all", publish_not_ready=True), NS)
        await client.create(SERVICES, web_service("manual", selector={}), NS)
        mine = {"metadata": {"name": "manual"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}],
                                                              "ports": [{"name": "http", "port": 80}]}]}
        created = await client.create(EP, mine, NS)
        await make_pod(client, "web-1", "10.0.0.1", False, port=8080)

        async def published() -> bool:
            return ips(await endpoints(client, "all")) == {8080: ["10.0.0.1"]}
        await until(published, what="not-ready pod published")
        manual = await endpoints(client, "manual")
        assert manual is not None and manual["subsets"] == created["subsets"]
        assert manual["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def _none(value: Any) -> bool:
    return await value is None


def test_over_capacity_keeps_ready_addresses_first() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(3)],
                "notReadyAddresses": [{"ip": "10.0.1.1"}], "ports": [{"port": 1}]},
               {"addresses": [{"ip": "10.0.2.1"}], "ports": [{"port": 2}]}]
    assert truncate(subsets, 3)
    assert subsets == [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(3)], "ports": [{"port": 1}]}]
    assert not truncate(subsets, 3)
