"""Routes to the other nodes' pod CIDRs through their node IPs (flannel's host-gw backend).

For every other Node with a podCIDR and an InternalIP of the same family, the main table holds
`podCIDR via InternalIP proto 199`; a node that goes, or loses either, loses its route. The routes this
component writes carry its own protocol number, so it finds and removes only its own: routes of anyone
else are never touched. Nodes must share a link (host-gw needs the next hop to be directly reachable).
Hollow nodes (label `type=hollow`) carry no traffic and their addresses lead nowhere: they get no route.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from typing import Any

from pyk8s.api import catalog
from pyk8s.client.client import Client
from pyk8s.client.informer import SharedInformer

__all__ = ["ROUTE_PROTOCOL", "NodeRoutes", "desired_routes"]

log = logging.getLogger(__name__)

ROUTE_PROTOCOL = 199  # unassigned in /etc/iproute2/rt_protos; marks the routes pyk8s made
NODES = catalog.require("", "Node")
Obj = dict[str, Any]


def _cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    return [c for c in cidrs if isinstance(c, str)]


def _internal_ips(node: Obj) -> list[str]:
    addrs = (node.get("status") or {}).get("addresses") or []
    return [a["address"] for a in addrs
            if isinstance(a, dict) and a.get("type") == "InternalIP" and a.get("address")]  # fmt: skip


def desired_routes(nodes: list[Obj], own_name: str) -> dict[str, str]:
    """Destination CIDR → gateway, for every other node with a pod CIDR and an address to reach it by."""
    out: dict[str, str] = {}
    for node in nodes:
        meta = node.get("metadata") or {}
        if meta.get("name") == own_name or (meta.get("labels") or {}).get("type") == "hollow":
            continue
        ips = _internal_ips(node)
        for cidr in _cidrs(node):
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            for ip in ips:
                try:
                    if ipaddress.ip_address(ip).version == net.version:
                        out[str(net)] = ip
                        break
                except ValueError:
                    continue
    return out


class NodeRoutes:
    """Keeps this node's routes to the other nodes' pod CIDRs. `run()` until cancelled; the routes stay
    when it stops (pods keep talking across a restart); `cleanup()` removes them all.

    `netns` runs every `ip` command in that network namespace (tests play nodes as namespaces)."""

    def __init__(
        self,
        client: Client,
        node_name: str,
        *,
        netns: str | None = None,
        protocol: int = ROUTE_PROTOCOL,
        resync_period: float = 30.0,
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.netns = netns
        self.protocol = protocol
        self.resync_period = resync_period
        self.synced = 0  # completed syncs, for tests and metrics
        self._dirty = asyncio.Event()
        self._informer = SharedInformer(client, NODES)

    async def run(self) -> None:
        inf = self._informer
        inf.add_handler(self._changed, self._changed, self._changed)
        inf.start()
        try:
            await inf.wait_for_sync()
            while True:
                self._dirty.clear()
                try:
                    await self.sync(inf.lister.list())
                    wait = self.resync_period
                except Exception:
                    log.exception("syncing routes to the other nodes failed")
                    wait = min(self.resync_period, 2.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), wait)
        finally:
            await inf.stop()

    def _changed(self, *_: Any) -> None:
        self._dirty.set()

    async def sync(self, nodes: list[Obj]) -> None:
        """Make the routes marked with our protocol exactly those `nodes` call for."""
        want = desired_routes(nodes, self.node_name)
        have = await self.current()
        errors: list[str] = []
        for dst in have:
            if dst not in want:
                err = await self._ip("route", "del", dst, "proto", str(self.protocol))
                if err:
                    errors.append(err)
        for dst, gateway in want.items():
            if have.get(dst) != gateway:
                err = await self._ip("route", "replace", dst, "via", gateway, "proto", str(self.protocol))
                if err:
                    errors.append(err)
        self.synced += 1
        if errors:
            raise RuntimeError("; ".join(errors))

    async def current(self) -> dict[str, str]:
        """Our routes in the main table: destination → gateway."""
        out: dict[str, str] = {}
        for family in ("-4", "-6"):
            proto = str(self.protocol)
            text = await self._ip_output(family, "-j", "route", "show", "table", "main", "proto", proto)
            for route in json.loads(text or "[]"):
                dst = route.get("dst", "")
                if dst and dst != "default":  # a host route prints without its /32 or /128
                    out[str(ipaddress.ip_network(dst, strict=False))] = route.get("gateway", "")
        return out

    async def cleanup(self) -> None:
        """Remove every route this component made."""
        for dst in await self.current():
            await self._ip("route", "del", dst, "proto", str(self.protocol))

    def _argv(self, *args: str) -> list[str]:
        return ["ip", *(["-n", self.netns] if self.netns else []), *args]

    async def _ip(self, *args: str) -> str:
        """Run `ip`; the error text, or "" when it succeeded."""
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*args), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
        if proc.returncode:
            return f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}"
        return ""

    async def _ip_output(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
        return out.decode()
