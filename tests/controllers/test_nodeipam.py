from __future__ import annotations

from typing import Any

import pytest

from pyk8s.client.client import Client
from pyk8s.controllers.manager import ControllerOptions
from pyk8s.controllers.nodeipam import CIDRAllocator, NodeIPAMController
from tests.controllers._housekeeping import running, until
from tests.support.apiserver import api_server, info

NODES = info("", "nodes")
assert NODES is not None


def node(name: str, cidr: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}


async def _cidr(client: Client, name: str) -> str | None:
    spec = (await client.get(NODES, name)).get("spec") or {}
    if spec.get("podCIDR"):
        assert spec["podCIDRs"] == [spec["podCIDR"]]
    return spec.get("podCIDR")


def test_allocator_hands_out_distinct_subnets_and_refuses_when_full() -> None:
    a = CIDRAllocator("10.42.0.0/22", 24)
    got = {a.allocate() for _ in range(4)}
    assert got == {"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24", "10.42.3.0/24"}
    assert a.allocate() is None
    a.release("10.42.2.0/24")
    assert a.allocate() == "10.42.2.0/24"
    assert not a.occupy("192.168.0.0/24")  # outside the cluster CIDR: ignored
    with pytest.raises(ValueError):
        CIDRAllocator("10.42.0.0/16", 8)


async def test_nodes_get_pod_cidrs_released_and_rebuilt_after_restart() -> None:
    opts = ControllerOptions(cluster_cidr="10.42.0.0/23")  # two /24s only
    async with api_server() as srv:
        async with running(srv, NodeIPAMController, options=opts) as (client, _):
            await client.create(NODES, node("a"))
            a = await until(lambda: _cidr(client, "a"), what="a's CIDR")
            assert a == "10.42.0.0/24"
        # A restarted controller sees a's CIDR taken and gives b the other one.
        async with running(srv, NodeIPAMController, options=opts) as (client, _):
            await client.create(NODES, node("b"))
            assert await until(lambda: _cidr(client, "b"), what="b's CIDR") == "10.42.1.0/24"
            # The range is full: c waits until a goes.
            await client.create(NODES, node("c"))
            await client.delete(NODES, "a")
            assert await until(lambda: _cidr(client, "c"), what="c's CIDR") == "10.42.0.0/24"
